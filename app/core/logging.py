"""Loguru setup: console or JSON, optional rotating file, stdlib logs routed in, secrets scrubbed."""

from __future__ import annotations

import atexit
import contextlib
import inspect
import logging
import re
import sys
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from app.core.settings import LogSettings

if TYPE_CHECKING:  # loguru ships `Record` in its stubs only
    from loguru import Record

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


# Every pattern above needs one of these words or prefixes; a line with none of them (almost
# every access line) skips the seven substitutions. A false alarm only costs the full pass.
_MAYBE_SECRET = re.compile(r"(?i)authorization|bearer|eyJ|passw|secret|token|key|sk-|AIza")


def redact(text: str) -> str:
    """Scrub credentials out of a string destined for a log."""
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return text


# Characters that end or fake a line in a log reader or terminal: C0/C1 controls (CR, LF, ESC
# for colour codes), DEL and the Unicode line/paragraph separators.
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_log_text(text: str) -> str:
    """`text` on one line: control characters and line separators as `\\xNN`/`\\uNNNN`, so
    user text (a question, a title, a path) cannot start a forged log line."""
    if not _LINE_BREAKING.search(text):
        return text
    return _LINE_BREAKING.sub(_escape_char, text)


# The request being served (set by the edge middleware): a plain context variable costs a
# fraction of `logger.contextualize`, which copies loguru's whole context on every request.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def _patch(record: Record) -> None:
    request_id = REQUEST_ID.get()
    if request_id is not None and record["extra"].get("request_id", "-") == "-":
        record["extra"]["request_id"] = request_id
    # Every message, once formatted with its arguments: whatever user text a call site put in
    # (questions, titles, file names, source ids, labels), one record stays one line.
    record["message"] = redact(escape_log_text(record["message"]))
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


class BufferedStream:
    """A loguru sink for stderr that batches writes: lines are appended to a buffer and a
    daemon thread writes them out every `interval` seconds (and at exit).

    Writing and flushing stderr once per line cost about a tenth of a small request's CPU on
    the event loop; batching moves the system calls to the writer thread, which holds no GIL
    while writing. WARNING and above are written through at once.
    """

    def __init__(self, stream: Any, interval: float) -> None:
        self.stream = stream
        self.interval = interval
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write(self, message: Any) -> None:
        with self._lock:
            self._lines.append(message)
        record = getattr(message, "record", None)
        if record is not None and record["level"].no >= logging.WARNING:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            with contextlib.suppress(Exception):  # a closed stderr must not break logging
                self.stream.write("".join(lines))
                self.stream.flush()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self.flush()


_STDERR_BUFFER: BufferedStream | None = None


def flush_logs() -> None:
    """Write out buffered log lines now (shutdown: uvicorn may end the process by re-raising
    SIGTERM, and then no atexit handler runs)."""
    if _STDERR_BUFFER is not None:
        _STDERR_BUFFER.flush()


def _stderr_sink(buffer_ms: float) -> Any:
    """stderr itself (write-through) or one shared buffered writer in front of it."""
    global _STDERR_BUFFER
    if buffer_ms <= 0 or sys.stderr.isatty():  # a terminal shows each line as it happens
        return sys.stderr
    if _STDERR_BUFFER is None or _STDERR_BUFFER.stream is not sys.stderr:
        if _STDERR_BUFFER is not None:
            _STDERR_BUFFER.close()
        _STDERR_BUFFER = BufferedStream(sys.stderr, buffer_ms / 1000)
    _STDERR_BUFFER.interval = buffer_ms / 1000
    return _STDERR_BUFFER.write


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
        _stderr_sink(settings.buffer_ms),
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
    # aiosqlite logs every statement with its parameters at DEBUG (personal data, password
    # hashes), so it never goes below INFO, whatever LOG_LEVEL says.
    for noisy in (
        "aiosqlite",
        "asyncio",
        "taskiq",
        "chromadb",
        "sentence_transformers",
        "transformers",
        "urllib3",
        "httpcore",
        "alembic.runtime.plugins",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
