"""`sentinel eval-retrieval --from-feedback OUT.jsonl`: operators' 👎 corrections as retrieval
eval questions.

Each 👎 answer whose rater named the document that should have answered becomes one
`{"question": ..., "doc": "<that document's title>"}` line, the format `--data` reads, so
questions the assistant got wrong in real use join the eval set.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def export_feedback(out: Path) -> int:
    """Write the corrections found in the configured database to `out`; the exit status."""
    from app.cli_context import migrated_container

    container = migrated_container("WARNING")

    async def go() -> int:
        try:
            return await container.feedback_service().export_eval_cases(out)
        finally:
            await container.database().dispose()

    try:
        written = asyncio.run(go())
    except OSError as exc:
        print(f"sentinel: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{out}: {written} questions from 👎 answers with a corrected document")
    return 0


class FeedbackExportAction(argparse.Action):
    """Runs the export as soon as the option is parsed and exits, as `--help` does, so the
    options that evaluating needs (`--data`) are not asked for."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        parser.exit(export_feedback(Path(str(values))))
