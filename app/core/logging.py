"""Loguru setup: console or JSON, optional rotating file, stdlib logs routed in, secrets scrubbed."""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
import sys
from pathlib import Path
from typing import Any

from loguru import logger

from app.core.settings import LogSettings

# Patterns for values that must never reach a log line.
_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(bearer|basic)?\s*[^\s\"',}]+"),
        r"\1\2 ***",
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 ***"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "***jwt***"),
    (
        re.compile(
            r"(?i)([\"']?(?:password|passwd|secret|api[_-]?key|access[_-]?token|refresh[_-]?token|"
            r"client[_-]?secret|token|key)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
        ),
        r"\1***",
    ),
    (re.compile(r"([?&](?:key|api_key|token|access_token)=)[^&\s]+"), r"\1***"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-***"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), "AIza***"),
]


def redact(text: str) -> str:
    """Scrub credentials out of a string destined for a log."""
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return text


def _patch(record: dict[str, Any]) -> None:
    record["message"] = redact(record["message"])
    if record["exception"] is not None:
        # Tracebacks are rendered later; scrub the exception value too.
        exc = record["exception"]
        if exc.value is not None and exc.value.args:
            with contextlib.suppress(Exception):  # best effort, never break logging
                exc.value.args = tuple(
                    redact(a) if isinstance(a, str) else a for a in exc.value.args
                )
    for key, value in list(record["extra"].items()):
        if isinstance(value, str):
            record["extra"][key] = redact(value)


class InterceptHandler(logging.Handler):
    """Send stdlib logging records (uvicorn, SQLAlchemy, httpx) to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "uvicorn.error" and record.msg == "Exception in ASGI application":
            # Sentinel's error handler already logged this exception once, with the request id.
            return
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        # Find the caller outside the logging module so loguru names the real origin.
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


_CONSOLE_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
    "<cyan>{extra[request_id]}</cyan> | <cyan>{name}</cyan>:<cyan>{line}</cyan> - "
    "<level>{message}</level>"
)


def setup_logging(settings: LogSettings) -> None:
    """Configure loguru sinks; safe to call more than once (tests build many apps)."""
    logger.remove()
    logger.configure(extra={"request_id": "-"}, patcher=_patch)
    serialize = settings.format == "json"
    logger.add(
        sys.stderr,
        level=settings.level.upper(),
        format=_CONSOLE_FORMAT if not serialize else "{message}",
        serialize=serialize,
        backtrace=False,
        diagnose=False,  # diagnose would print local variables, secrets included
        enqueue=False,
    )
    if settings.file_path:
        Path(settings.file_path).parent.mkdir(parents=True, exist_ok=True)
        logger.add(
            settings.file_path,
            level=settings.level.upper(),
            format=_CONSOLE_FORMAT.replace("<green>", "").replace("</green>", "")
            if not serialize
            else "{message}",
            serialize=serialize,
            rotation=settings.rotation,
            retention=settings.retention,
            compression=settings.compression or None,
            enqueue=True,
            backtrace=False,
            diagnose=False,
        )
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy", "httpx", "alembic"):
        std = logging.getLogger(name)
        std.handlers = [InterceptHandler()]
        std.propagate = False
    # Our middleware logs each request; uvicorn's access line would duplicate it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for noisy in (
        "chromadb",
        "sentence_transformers",
        "transformers",
        "urllib3",
        "httpcore",
        "alembic.runtime.plugins",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
