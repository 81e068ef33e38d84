"""Prompt templates as text files, loaded into LangChain prompt templates."""

from __future__ import annotations

from functools import cache
from pathlib import Path

PROMPT_DIR = Path(__file__).resolve().parent


@cache
def load(name: str) -> str:
    """The text of `app/prompts/<name>.txt`."""
    return (PROMPT_DIR / f"{name}.txt").read_text(encoding="utf-8")
