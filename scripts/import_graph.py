"""The import graph of `app/` against its floors: no import runs from a lower floor to a higher
one, no two modules import each other (directly or round a circle), and no router reaches past
the services into `app/models` or `app/repositories`.

    uv run python scripts/import_graph.py          # prints what breaks the rules; exit 1 if any

Floors, lowest first (a module may import its own floor and the ones below):

    0  app.core, app.prompts              settings, errors, logging, the clock
    1  app.models                         ORM tables
    2  app.schemas                        wire types (request and response bodies, enums)
    3  app.repositories, app.clients,     SQL and Redis; outside services; the model
       app.ml
    4  app.services                       business logic, owns transactions
    5  app.middleware, app.api,           HTTP
       app.console
    6  app.container                      wiring
    7  app.main                           the ASGI app
    8  app.cli, app.cli_*, app.worker     entry points

Every import counts, lazy ones inside functions included; imports under `if TYPE_CHECKING:`
do not (they are annotations, never executed). `tests/test_import_graph.py` runs this in CI.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLOORS: tuple[tuple[str, int], ...] = (
    ("app.core", 0),
    ("app.prompts", 0),
    ("app.models", 1),
    ("app.schemas", 2),
    ("app.repositories", 3),
    ("app.clients", 3),
    ("app.ml", 3),
    ("app.services", 4),
    ("app.middleware", 5),
    ("app.api", 5),
    ("app.console", 5),
    ("app.container", 6),
    ("app.main", 7),
    ("app.cli", 8),
    ("app.cli_context", 8),
    ("app.cli_model", 8),
    ("app.cli_feedback", 8),
    ("app.worker", 8),
)
# What routers may not import, even though it lies below them: they go through services.
ROUTER_PACKAGES = ("app.api",)
BEHIND_SERVICES = ("app.models", "app.repositories")


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def floor(module: str) -> int | None:
    """The floor of `module` (the longest matching prefix), None for `app` itself."""
    matches = [(len(p), level) for p, level in FLOORS if _within(module, p)]
    return max(matches)[1] if matches else None


def modules(root: Path) -> dict[str, Path]:
    """Every module under `root/app`, by dotted name."""
    found = {}
    for path in sorted((root / "app").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    return skipped


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The `app` modules `name` imports (each name imported from a package counts as the
    submodule when it is one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        for target in targets:
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != name and _within(target, "app"):
                yield target


@dataclass(frozen=True)
class Report:
    """What breaks the rules: upward imports, cycles, routers reaching past the services."""

    upward: list[tuple[str, str]]
    cycles: list[list[str]]
    past_services: list[tuple[str, str]]

    @property
    def clean(self) -> bool:
        return not (self.upward or self.cycles or self.past_services)

    def lines(self) -> list[str]:
        out = [f"upward: {a} -> {b}" for a, b in self.upward]
        out += ["cycle: " + " -> ".join([*cycle, cycle[0]]) for cycle in self.cycles]
        out += [f"router past the services: {a} -> {b}" for a, b in self.past_services]
        return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def check(root: Path = ROOT) -> Report:
    known = modules(root)
    graph = {name: set(imports(name, path, known)) for name, path in known.items()}
    upward = []
    past_services = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            here, there = floor(source), floor(target)
            if here is not None and there is not None and there > here:
                upward.append((source, target))
            if any(_within(source, r) for r in ROUTER_PACKAGES) and any(
                _within(target, b) for b in BEHIND_SERVICES
            ):
                past_services.append((source, target))
    return Report(upward, _cycles(graph), past_services)


def main() -> int:
    report = check()
    for line in report.lines():
        print(line)
    if report.clean:
        print("import graph: 0 upward imports, 0 cycles, no router past the services")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
