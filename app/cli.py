"""The `sentinel` command: serve, migrate, create-admin (and the model commands)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from app.core.settings import Settings

Handler = Callable[[argparse.Namespace], int]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(path: str) -> Path:
    """Empty (or create) the directory where every worker writes its metric files.

    Must run before `prometheus_client` is imported anywhere in this process or the
    workers: it picks single- or multi-process mode from the environment at import.
    Files left by a previous run would otherwise be summed into the new counters.
    """
    directory = Path(path)
    if directory.exists():
        for child in directory.iterdir():
            if child.is_file() and child.suffix == ".db":
                child.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def _serve(args: argparse.Namespace) -> int:
    settings = Settings()
    workers = 1 if args.reload else (args.workers or settings.workers)
    if settings.metrics_multiproc_dir:
        prepare_metrics_dir(settings.metrics_multiproc_dir)
    elif workers > 1:
        # Several workers need shared metric files or /metrics shows one worker's share.
        # One fixed directory per port: emptied at each start, so nothing piles up even
        # though a signal-terminated server never runs exit hooks.
        port = args.port or settings.port
        prepare_metrics_dir(str(Path(tempfile.gettempdir()) / f"sentinel-metrics-{port}"))

    import uvicorn

    from app.core.database import run_migrations
    from app.core.logging import setup_logging
    from app.main import CHECKED_ENV, MIGRATED_ENV, ConfigurationError, check_configuration

    setup_logging(settings.log)
    try:
        check_configuration(settings)
    except ConfigurationError as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        return 2
    os.environ[CHECKED_ENV] = "1"
    if settings.db.migrate_on_start:
        # Migrate once here so several workers do not race on it.
        run_migrations(settings.db.url)
        os.environ[MIGRATED_ENV] = "1"
    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=None if args.reload else workers,
        reload=args.reload,
        log_config=None,  # loguru owns logging
        timeout_graceful_shutdown=int(settings.shutdown_timeout_secs),
        proxy_headers=True,
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from app.core.database import run_migrations
    from app.core.logging import setup_logging

    settings = Settings()
    setup_logging(settings.log)
    run_migrations(settings.db.url, args.revision)
    print(f"database migrated to {args.revision}")
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    from app.container import Container
    from app.core.database import run_migrations
    from app.core.logging import setup_logging

    settings = Settings()
    setup_logging(settings.log)
    run_migrations(settings.db.url)
    container = Container()
    container.settings.override(settings)

    async def go() -> int:
        try:
            user, created = await container.user_service().create_admin(
                args.email, args.password, args.name
            )
        except ValueError as exc:
            print(f"sentinel: {exc}", file=sys.stderr)
            return 2
        finally:
            await container.database().dispose()
        print(f"admin {'created' if created else 'updated'}: {user.email} ({user.id})")
        return 0

    return asyncio.run(go())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentinel", description="Sentinel backend")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--host", default=None, help="bind address (default HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="port (default PORT or 8000)")
    serve.add_argument("--workers", type=int, default=None, help="worker processes")
    serve.add_argument("--reload", action="store_true", help="reload on code changes (dev)")
    serve.set_defaults(handler=_serve)

    migrate = sub.add_parser("migrate", help="alembic upgrade head")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(handler=_migrate)

    admin = sub.add_parser("create-admin", help="create or promote an admin user")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--name", default=None)
    admin.set_defaults(handler=_create_admin)

    for register in EXTRA_COMMANDS:
        register(sub)
    return parser


# Later layers (the behaviour model) register sub-commands here.
EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []

from app.ml.cli import register_behavior_commands  # noqa: E402  (torch is imported lazily)

EXTRA_COMMANDS.append(register_behavior_commands)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
