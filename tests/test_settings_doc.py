"""`.env.example` and the README settings table are generated from the Settings class."""

from __future__ import annotations

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings

from app.cli import main
from app.core import settings_doc
from app.core.settings import ROOT_DIR, Settings


def test_env_example_matches_the_settings_class() -> None:
    committed = (ROOT_DIR / ".env.example").read_text(encoding="utf-8")
    assert committed == settings_doc.render_env_example(), (
        ".env.example drifted from app/core/settings.py: run `uv run sentinel settings --write`"
    )


def test_readme_settings_table_matches_the_settings_class() -> None:
    readme = (ROOT_DIR / "README.md").read_text(encoding="utf-8")
    assert settings_doc.readme_block(readme) == settings_doc.render_markdown(), (
        "the README settings table drifted from app/core/settings.py: "
        "run `uv run sentinel settings --write`"
    )


def test_every_environment_variable_is_documented_once() -> None:
    names = settings_doc.env_names()
    assert len(names) == len(set(names))
    env_lines = {
        line.split("=", 1)[0]
        for line in settings_doc.render_env_example().splitlines()
        if line and not line.startswith("#")
    }
    assert env_lines == set(names)
    assert {"DATABASE_URL", "REDIS_URL", "RAG_QUOTA_COOLDOWN_SECS"} <= env_lines


def test_machine_specific_defaults_do_not_leak_the_checkout_path() -> None:
    text = settings_doc.render_env_example() + settings_doc.render_markdown()
    assert str(ROOT_DIR) not in text
    assert "sqlite+aiosqlite:///<project>/data/sentinel.db" in text


def test_a_setting_without_description_is_refused() -> None:
    class Undocumented(BaseSettings):
        """A group someone forgot to document."""

        knob: int = Field(1, validation_alias="SOME_KNOB")

    class Root(BaseSettings):
        """Root."""

        extra: Undocumented = Field(default_factory=Undocumented)

    with pytest.raises(ValueError, match="SOME_KNOB"):
        settings_doc.render_markdown(Root)


def test_group_classes_cover_every_nested_group() -> None:
    groups = settings_doc.group_classes()
    assert set(groups) == {
        "db",
        "redis",
        "log",
        "security",
        "model",
        "events",
        "alerts",
        "llm",
        "rate_limit",
        "retention",
        "jobs",
    }
    for name, cls in groups.items():
        assert isinstance(getattr(Settings(), name), cls)


def test_cli_prints_both_documents(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "--env-example"]) == 0
    assert capsys.readouterr().out == settings_doc.render_env_example()
    assert main(["settings", "--markdown"]) == 0
    assert capsys.readouterr().out == settings_doc.render_markdown()
