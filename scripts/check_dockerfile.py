"""Check the Dockerfile and .dockerignore by reading them (CI has no Docker daemon to build with).

- The CPU build leaves out exactly the wheels only torch's CUDA build needs: the image installs
  every package of uv.lock except torch and `TORCH_CUDA_ONLY`, then the CPU torch at the lock's
  version. When a torch upgrade in the lock brings a new CUDA wheel (or drops one), the list must
  follow, or the CPU image grows by gigabytes (or names a package the lock no longer has).
- Every `uv sync` leaves those out, and each after the first keeps the torch installed before it
  (`--inexact`); the RUN shell stops at the first failing command (`-e`, `pipefail`).
- The build context (.dockerignore, matched as Docker matches it) holds every file a `COPY` takes
  and none of the virtual environment, the local data, the logs, the tests or `.env`.

Run: `uv run python scripts/check_dockerfile.py`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "sentinel"
LINUX_ONLY = "sys_platform == 'linux'"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Paths the build context must not carry: the multi-GB venv, local state, secrets, tests.
MUST_STAY_OUT = (
    ".venv/bin/python",
    ".venv/lib/python3.11/site-packages/torch/__init__.py",
    ".git/HEAD",
    ".env",
    "data/sentinel.db",
    "data/chromadb-data/chroma.sqlite3",
    "data/models/site-model-1.pt",
    "logs/app.log",
    "tests/conftest.py",
    "app/__pycache__/main.cpython-311.pyc",
)


def lock_graph(lock_text: str, *, linux_only_torch_deps: bool = True) -> dict[str, set[str]]:
    """Each locked package name -> the names it depends on (every version, extras followed).

    Without `linux_only_torch_deps`, torch's edges that hold on Linux only are dropped: what is
    left is what torch needs everywhere, i.e. what its CPU build needs."""
    packages: list[dict[str, Any]] = tomllib.loads(lock_text)["package"]
    optional: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for package in packages:
        optional.setdefault(package["name"], {}).update(package.get("optional-dependencies", {}))
    graph: dict[str, set[str]] = {}
    for package in packages:
        edges = graph.setdefault(package["name"], set())
        for dependency in package.get("dependencies", []):
            cuda_edge = package["name"] == "torch" and LINUX_ONLY in dependency.get("marker", "")
            if cuda_edge and not linux_only_torch_deps:
                continue
            edges.add(dependency["name"])
            for extra in dependency.get("extra", []):
                extras = optional.get(dependency["name"], {}).get(extra, [])
                edges.update(item["name"] for item in extras)
    return graph


def reachable(graph: dict[str, set[str]], start: Iterable[str]) -> set[str]:
    """Every package reachable from `start`."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def cuda_only_packages(lock_text: str) -> set[str]:
    """What the image's dependencies (no dev, no train group) need only for torch's CUDA build.

    PyPI's torch is the CUDA build on Linux and the CPU build elsewhere, so its dependencies
    marked Linux-only (and all they pull in that nothing else does) are the CUDA-only ones."""
    full = lock_graph(lock_text)
    cpu = lock_graph(lock_text, linux_only_torch_deps=False)
    return reachable(full, full[PROJECT]) - reachable(cpu, cpu[PROJECT])


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, its continuation lines joined."""

    keyword: str
    args: str


def instructions(dockerfile_text: str) -> list[Instruction]:
    """The instructions in order; comment lines (also inside a continued one) are dropped."""
    found: list[Instruction] = []
    pending = ""
    for line in dockerfile_text.splitlines():
        if line.lstrip().startswith("#") or (not pending and not line.strip()):
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        found.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    return found


def stage(dockerfile_text: str, name: str) -> list[Instruction]:
    """The instructions of the stage `FROM ... AS name`, its FROM first."""
    found: list[Instruction] = []
    for instruction in instructions(dockerfile_text):
        if instruction.keyword == "FROM":
            if found:
                break
            if instruction.args.split()[-1] != name:
                continue
        if instruction.keyword == "FROM" or found:
            found.append(instruction)
    return found


def dockerfile_arg(dockerfile_text: str, name: str) -> str:
    """The default value of `ARG name=...` (quotes removed)."""
    for instruction in instructions(dockerfile_text):
        if instruction.keyword == "ARG" and instruction.args.startswith(f"{name}="):
            return instruction.args.split("=", 1)[1].strip('"')
    raise ValueError(f"the Dockerfile has no `ARG {name}=...`")


def cuda_problems(dockerfile_text: str, lock_text: str) -> list[str]:
    """Where `TORCH_CUDA_ONLY` and `TORCH_INDEX` disagree with the lock and the CPU build."""
    found: list[str] = []
    listed = set(dockerfile_arg(dockerfile_text, "TORCH_CUDA_ONLY").split())
    expected = cuda_only_packages(lock_text)
    if missing := sorted(expected - listed):
        found.append(f"TORCH_CUDA_ONLY lacks {missing}: the CPU image would install them")
    if extra := sorted(listed - expected):
        found.append(
            f"TORCH_CUDA_ONLY names {extra}, which the lock has not as a CUDA-only wheel of torch"
        )
    if dockerfile_arg(dockerfile_text, "TORCH_INDEX") != CPU_INDEX:
        found.append("the default TORCH_INDEX is not PyTorch's CPU-only index")
    return found


def run_problems(dockerfile_text: str) -> list[str]:
    """The RUN steps: a shell that stops on errors, and every `uv sync` leaving CUDA torch out."""
    found: list[str] = []
    shell: list[str] = []
    syncs = 0
    for instruction in instructions(dockerfile_text):
        if instruction.keyword == "FROM":
            shell = []  # each stage starts again with /bin/sh -c
        if instruction.keyword == "SHELL":
            shell = json.loads(instruction.args)
        if instruction.keyword != "RUN":
            continue
        stops = any(re.fullmatch(r"-[a-z]*e[a-z]*", word) for word in shell)
        if ";" in instruction.args and not (stops and "pipefail" in shell):
            found.append(
                "a RUN chains commands with `;` but SHELL lacks `-e` or `-o pipefail`: "
                "a failing step would not fail the build"
            )
        if "uv sync" not in instruction.args:
            continue
        if "for name in torch $TORCH_CUDA_ONLY" not in instruction.args or not re.search(
            r"uv sync [^;]*\"\$@\"", instruction.args
        ):
            found.append("a `uv sync` does not leave out torch and TORCH_CUDA_ONLY")
        if syncs and "--inexact" not in instruction.args:
            found.append("a `uv sync` after torch is installed lacks --inexact: it removes torch")
        syncs += 1
    return found


def problems(dockerfile_text: str, lock_text: str) -> list[str]:
    """What is wrong between the Dockerfile and the lock; empty when they agree."""
    return cuda_problems(dockerfile_text, lock_text) + run_problems(dockerfile_text)


@dataclass(frozen=True)
class IgnorePattern:
    """One .dockerignore line as a regular expression (moby/patternmatcher's translation)."""

    regex: re.Pattern[str]
    exclusion: bool  # a `!` line: puts back what earlier lines left out


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """`*` within a path segment, `?` one character, `**` any number of segments (even none)."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i == len(pattern) else "(.*/)?"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif char == "[":
            end = pattern.find("]", i)
            out += pattern[i : end + 1] if end > i else re.escape(char)
            i = end if end > i else i
        else:
            out += re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


def parse_dockerignore(text: str) -> list[IgnorePattern]:
    """The patterns of a .dockerignore, cleaned the way Docker cleans them."""
    patterns: list[IgnorePattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        line = line[1:].strip() if exclusion else line
        cleaned = "/".join(p for p in line.split("/") if p not in {"", "."}) or "."
        patterns.append(IgnorePattern(_pattern_regex(cleaned), exclusion))
    return patterns


def ignored(patterns: list[IgnorePattern], path: str) -> bool:
    """Whether Docker leaves `path` (relative, `/`-separated) out of the build context: the last
    pattern matching it or one of its parent directories decides."""
    parts = path.split("/")
    candidates = [path] + ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
    matched = False
    for pattern in patterns:
        if pattern.exclusion != matched:
            continue  # only a `!` line can change a match, only a plain one a non-match
        if any(pattern.regex.match(candidate) for candidate in candidates):
            matched = not pattern.exclusion
    return matched


def copy_sources(dockerfile_text: str) -> list[str]:
    """What the `COPY` instructions take from the build context (not `--from` another stage)."""
    sources: list[str] = []
    for instruction in instructions(dockerfile_text):
        if instruction.keyword != "COPY":
            continue
        words = instruction.args.split()
        if any(word.startswith("--from") for word in words):
            continue
        sources += [word for word in words if not word.startswith("--")][:-1]
    return sources


def project_files(root: Path, sources: list[str]) -> list[str]:
    """The files under `sources` a fresh clone has (tracked, or new and not git-ignored)."""
    git = shutil.which("git") or "git"
    listed = subprocess.run(  # noqa: S603 - git with fixed arguments and the Dockerfile's paths
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *sources],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(name for name in set(listed.split("\0")) if name and (root / name).is_file())


def context_problems(dockerfile_text: str, dockerignore_text: str, root: Path) -> list[str]:
    """Files a COPY needs that the context leaves out, and paths that must stay out but get in."""
    patterns = parse_dockerignore(dockerignore_text)
    found: list[str] = []
    sources = copy_sources(dockerfile_text)
    files = project_files(root, sources)
    for source in sources:
        if not any(name == source or name.startswith(f"{source}/") for name in files):
            found.append(f"COPY {source}: no such file in the project")
    found += [
        f"{name}: COPY needs it, .dockerignore leaves it out"
        for name in files
        if ignored(patterns, name)
    ]
    found += [
        f"{path}: .dockerignore lets it into the build context"
        for path in MUST_STAY_OUT
        if not ignored(patterns, path)
    ]
    return found


def main() -> int:
    dockerfile = (ROOT / "Dockerfile").read_text()
    found = problems(dockerfile, (ROOT / "uv.lock").read_text())
    found += context_problems(dockerfile, (ROOT / ".dockerignore").read_text(), ROOT)
    for problem in found:
        print(f"check-dockerfile: {problem}", file=sys.stderr)
    if not found:
        print(
            "check-dockerfile: the CPU image leaves out exactly torch's CUDA-only wheels; "
            "the build context holds what COPY takes and no more"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
