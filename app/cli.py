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
    from app.core.migrations import ensure_database

    problem = ensure_database(settings.db.url, settings.db.create_if_missing)
    if problem:
        print(f"sentinel: {problem}", file=sys.stderr)
        return 2
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
    from app.core.logging import setup_logging
    from app.core.migrations import Direction, MigrationRefused, apply, ensure_database, plan

    settings = Settings()
    setup_logging(settings.log)
    problem = ensure_database(settings.db.url, settings.db.create_if_missing)
    if problem:
        print(f"sentinel: {problem}", file=sys.stderr)
        return 2
    try:
        step = plan(settings.db.url, args.revision)
    except MigrationRefused as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        return 2
    current, target = step.current or "base", step.target or "base"
    if step.direction is Direction.NONE:
        print(f"database already at {current}; nothing to do")
        return 0
    if step.direction is Direction.DOWNGRADE and not args.downgrade:
        print(
            f"sentinel: {target} is older than the database's revision {current}; downgrading "
            "drops the tables and data of the newer revisions. Rerun with --downgrade to do it.",
            file=sys.stderr,
        )
        return 2
    apply(settings.db.url, step)
    print(f"database {step.direction.value}d from {current} to {target}")
    return 0


def _read_password(args: argparse.Namespace) -> str | None:
    """--password, else stdin when piped (`echo pw | sentinel create-admin ...`), else a prompt."""
    if args.password:
        return args.password
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        return line or None
    import getpass

    first = getpass.getpass("Password for the admin: ")
    if first != getpass.getpass("Repeat the password: "):
        print("sentinel: the passwords do not match", file=sys.stderr)
        return None
    return first or None


def _create_admin(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter, ValidationError
    from pydantic.networks import EmailStr

    try:
        email = str(TypeAdapter(EmailStr).validate_python(args.email))
    except ValidationError:
        print(
            f"sentinel: {args.email!r} is not a valid e-mail address (e.g. admin@example.com)",
            file=sys.stderr,
        )
        return 2
    password = _read_password(args)
    if not password:
        print("sentinel: no password given (use --password, stdin or the prompt)", file=sys.stderr)
        return 2

    from app.container import Container
    from app.core.database import run_migrations
    from app.core.logging import setup_logging
    from app.core.migrations import ensure_database

    settings = Settings()
    setup_logging(settings.log)
    problem = ensure_database(settings.db.url, settings.db.create_if_missing)
    if problem:
        print(f"sentinel: {problem}", file=sys.stderr)
        return 2
    run_migrations(settings.db.url)
    container = Container()
    container.settings.override(settings)

    async def go() -> int:
        try:
            user, created = await container.user_service().create_admin(
                email, password, args.name, reset_password=args.reset_password
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
    serve.add_argument(
        "--host", default=None, help="bind address (default HOST; 127.0.0.1 in development)"
    )
    serve.add_argument("--port", type=int, default=None, help="port (default PORT or 8000)")
    serve.add_argument(
        "--workers", type=int, default=None, help="worker processes (default WORKERS or 1)"
    )
    serve.add_argument("--reload", action="store_true", help="reload on code changes (dev)")
    serve.set_defaults(handler=_serve)

    migrate = sub.add_parser(
        "migrate", help="upgrade (or, with --downgrade, downgrade) the database schema"
    )
    migrate.add_argument(
        "--revision",
        default="head",
        help="target revision: head (default), base, or a revision id such as 0002_events",
    )
    migrate.add_argument(
        "--downgrade",
        action="store_true",
        help="allow going back to an older revision (drops the newer revisions' tables and data)",
    )
    migrate.set_defaults(handler=_migrate)

    admin = sub.add_parser(
        "create-admin", help="create an admin user (or promote one with --reset-password)"
    )
    admin.add_argument("--email", required=True, help="the admin's e-mail (their login)")
    admin.add_argument(
        "--password",
        default=None,
        help="the password (avoid: it stays in shell history); default: read from stdin "
        "when piped, else prompted",
    )
    admin.add_argument("--name", default=None, help="display name (optional)")
    admin.add_argument(
        "--reset-password",
        action="store_true",
        help="if the e-mail already has an account: make it admin and set this password",
    )
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
