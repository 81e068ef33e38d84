"""Append-only JSONL log of accepted events (`EVENT_LOG_PATH`), rotated by size.

A dedicated thread does the file I/O so the event loop never blocks on disk; lines are
queued after the database commit. The database is the durable record; this log mirrors it for
tools that tail files, as the original backend did.
"""

from __future__ import annotations

import asyncio
import json
import queue
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from loguru import logger

from app.core.settings import EventSettings

_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
DEFAULT_ROTATION_BYTES = 100 * 1000**2


def parse_size(text: str) -> int:
    """'100 MB' → bytes; anything unparsable falls back to 100 MB with a warning."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text or "")
    unit = (match.group(2) or "b").lower() if match else ""
    if not match or unit not in _UNITS:
        logger.warning("EVENT_LOG_ROTATION={!r} is not a size like '100 MB'; using 100 MB", text)
        return DEFAULT_ROTATION_BYTES
    return max(1, int(float(match.group(1)) * _UNITS[unit]))


class EventLog:
    """Writes one JSON object per line; rotates to `<name>.<timestamp>.jsonl` past the size limit."""

    def __init__(self, settings: EventSettings) -> None:
        self.path = Path(settings.log_path)
        self.max_bytes = parse_size(settings.log_rotation)
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="event-log", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join, 10)
            self._thread = None

    def append(self, records: list[dict[str, Any]]) -> None:
        self.append_encoded(
            [json.dumps(record, ensure_ascii=False, separators=(",", ":")) for record in records]
        )

    def append_encoded(self, lines: list[str]) -> None:
        """Queue lines that are already one JSON object each (one queue item per group)."""
        if lines:
            self._queue.put("\n".join(lines))

    def _rotate(self, handle: TextIO) -> TextIO:
        handle.close()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self.path.rename(self.path.with_name(f"{self.path.stem}.{stamp}{self.path.suffix}"))
        return self.path.open("a", encoding="utf-8")

    def _run(self) -> None:
        handle: TextIO = self.path.open("a", encoding="utf-8")
        try:
            while True:
                line = self._queue.get()
                done = line is None
                lines = [] if line is None else [line]
                # Drain what is already queued so a burst costs one flush.
                while not done:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        done = True
                    else:
                        lines.append(nxt)
                for item in lines:
                    handle.write(item + "\n")
                    if handle.tell() >= self.max_bytes:
                        handle = self._rotate(handle)
                handle.flush()
                if done:
                    return
        except OSError as exc:
            logger.error("event log writer stopped: {}", exc)
        finally:
            handle.close()
