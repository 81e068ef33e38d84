"""Documentation generated from the Settings class: `.env.example` and the README table.

The class in `app/core/settings.py` is the only place a setting is written down (name,
environment variable, default, constraint and `description=`). `sentinel settings
--env-example` / `--markdown` render it; `sentinel settings --write` rewrites both files,
and `.ci/check-generated` plus `tests/test_settings_doc.py` fail when they drift.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from app.core.settings import ROOT_DIR, Settings

README_START = "<!-- settings:start -->"
README_END = "<!-- settings:end -->"
ROOT_PLACEHOLDER = "<project>"
_WIDTH = 100

ENV_HEADER = """\
# Sentinel configuration. Copy to `.env` and edit; every variable is optional in development.
# The defaults run embedded: SQLite under data/, no Redis, Chroma on disk, the shipped model, local answers.
# An empty value means "use the default".
# Generated from app/core/settings.py by `sentinel settings --write`: edit the class, not this file.
"""


@dataclass(frozen=True)
class SettingDoc:
    """One environment variable as documented: name, rendered default and meaning."""

    env: str
    default: str
    description: str
    # The default depends on where the project lives (a path under ROOT_DIR).
    machine_specific: bool


@dataclass(frozen=True)
class SettingsGroup:
    """A heading (the group class's docstring) and its variables, in class order."""

    title: str
    settings: tuple[SettingDoc, ...]


def settings_groups(cls: type[BaseSettings] = Settings) -> list[SettingsGroup]:
    """The root's own fields under "App", then one group per nested settings class."""
    groups = [SettingsGroup("App", tuple(_docs(cls)))]
    for field in cls.model_fields.values():
        sub = _nested_class(field)
        if sub is not None:
            groups.append(SettingsGroup(_title(sub), tuple(_docs(sub))))
    return groups


def group_classes(cls: type[BaseSettings] = Settings) -> dict[str, type[BaseSettings]]:
    """Attribute name -> nested settings class (`{"db": DatabaseSettings, ...}`)."""
    return {
        name: sub
        for name, field in cls.model_fields.items()
        if (sub := _nested_class(field)) is not None
    }


def env_names(cls: type[BaseSettings] = Settings) -> list[str]:
    """Every environment variable the class reads, in documentation order."""
    return [doc.env for group in settings_groups(cls) for doc in group.settings]


def render_env_example(cls: type[BaseSettings] = Settings) -> str:
    lines = [ENV_HEADER.rstrip("\n")]
    for group in settings_groups(cls):
        heading = f"# --- {group.title} "
        lines += ["", heading + "-" * max(3, _WIDTH - len(heading))]
        for doc in group.settings:
            comment = doc.description
            if doc.machine_specific:
                comment += f" Default: {doc.default}."
            lines += textwrap.wrap(comment, _WIDTH - 2, initial_indent="# ", subsequent_indent="# ")
            lines.append(f"{doc.env}={'' if doc.machine_specific else doc.default}")
    return "\n".join(lines) + "\n"


def render_markdown(cls: type[BaseSettings] = Settings) -> str:
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for group in settings_groups(cls):
        lines.append(f"| **{_cell(group.title)}** | | |")
        for doc in group.settings:
            default = f"`{_cell(doc.default)}`" if doc.default else "*(empty)*"
            lines.append(f"| `{doc.env}` | {default} | {_cell(doc.description)} |")
    return "\n".join(lines) + "\n"


def replace_readme_block(readme: str, table: str) -> str:
    """README text with the part between the settings markers replaced by `table`."""
    start, end = _block_bounds(readme)
    return readme[:start] + "\n" + table + readme[end:]


def readme_block(readme: str) -> str:
    """The generated table currently in the README (between the markers)."""
    start, end = _block_bounds(readme)
    return readme[start:end].strip("\n") + "\n"


def write_files(root: Path = ROOT_DIR) -> list[Path]:
    """Regenerate `.env.example` and the README table in place; returns the files changed."""
    changed = []
    env_path = root / ".env.example"
    env_text = render_env_example()
    if not env_path.exists() or env_path.read_text(encoding="utf-8") != env_text:
        env_path.write_text(env_text, encoding="utf-8")
        changed.append(env_path)
    readme_path = root / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    updated = replace_readme_block(readme, render_markdown())
    if updated != readme:
        readme_path.write_text(updated, encoding="utf-8")
        changed.append(readme_path)
    return changed


def _block_bounds(readme: str) -> tuple[int, int]:
    start = readme.find(README_START)
    end = readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md lacks the markers {README_START!r} ... {README_END!r}")
    return start + len(README_START), end


def _nested_class(field: FieldInfo) -> type[BaseSettings] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
        return annotation
    return None


def _title(cls: type) -> str:
    first = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
    return first.rstrip(".")


def _docs(cls: type[BaseSettings]) -> Iterator[SettingDoc]:
    for name, field in cls.model_fields.items():
        if _nested_class(field) is not None:
            continue
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            env = str(alias.choices[0])
        elif isinstance(alias, str):
            env = alias
        else:
            env = name
        if not field.description:
            raise ValueError(f"{cls.__name__}.{name} ({env}) needs a description=")
        default, machine_specific = _render_default(field.get_default(call_default_factory=True))
        yield SettingDoc(env.upper(), default, field.description, machine_specific)


def _render_default(value: Any) -> tuple[str, bool]:
    if value is None:
        return "", False
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    if isinstance(value, Enum):
        return str(value.value), False
    if isinstance(value, float) and value.is_integer():
        return str(int(value)), False
    text = str(value)
    root = str(ROOT_DIR)
    if root in text:
        return text.replace(root, ROOT_PLACEHOLDER), True
    return text, False


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
