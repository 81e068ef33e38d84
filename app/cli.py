"""The `sentinel` command: serve, worker, migrate, create-admin, settings (and the model
commands)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from app.cli_feedback import FeedbackExportAction
from app.core.settings import Settings, settings_error_lines

if TYPE_CHECKING:
    from app.cli_context import CommandContext

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
        host=args.host or settings.bind_host,
        port=args.port or settings.port,
        workers=None if args.reload else workers,
        reload=args.reload,
        log_config=None,  # loguru owns logging
        timeout_graceful_shutdown=int(settings.shutdown_timeout_secs),
        proxy_headers=False,  # TRUSTED_PROXIES is the one rule (app/core/client_address.py)
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

    from app.cli_context import run_command

    async def work(context: CommandContext) -> int:
        try:
            user, created = await context.user_service().create_admin(
                email, password, args.name, reset_password=args.reset_password
            )
        except ValueError as exc:
            print(f"sentinel: {exc}", file=sys.stderr)
            return 2
        print(f"admin {'created' if created else 'updated'}: {user.email} ({user.id})")
        return 0

    return run_command(Settings(), args.migrate, work)


def _worker(args: argparse.Namespace) -> int:
    from app.core.database import run_migrations
    from app.core.logging import setup_logging
    from app.worker import run_worker

    settings = Settings()
    if args.concurrency:
        settings.jobs.worker_concurrency = args.concurrency
    setup_logging(settings.log)
    if not settings.redis.enabled:
        print(
            "sentinel: `sentinel worker` needs REDIS_URL (the job queue); without Redis, "
            "jobs run inside `sentinel serve`",
            file=sys.stderr,
        )
        return 2
    if settings.db.migrate_on_start:
        run_migrations(settings.db.url)
    return asyncio.run(run_worker(settings))


def _redis_host(context: CommandContext) -> str:
    """Host and port of REDIS_URL, never its password."""
    from urllib.parse import urlsplit

    url = urlsplit(context.settings.redis.url)
    return f"{url.hostname or 'localhost'}:{url.port or 6379}"


def _unlock(args: argparse.Namespace) -> int:
    from app.cli_context import run_command

    async def work(context: CommandContext) -> int:
        # The counters live in Redis, shared by every server process; without Redis each
        # process counts in its own memory, out of this command's reach.
        if not context.redis.enabled:
            print(
                "REDIS_URL is empty: each server process keeps its sign-in counters in memory; "
                "restart the server to clear them"
            )
            return 0
        if not context.redis.is_up:
            print(f"sentinel: Redis ({_redis_host(context)}) does not answer", file=sys.stderr)
            return 2
        await context.user_service().unlock(args.email)
        print(f"sign-in counters of {args.email.strip().lower()} cleared")
        return 0

    return run_command(Settings(), args.migrate, work)


def _set_role(args: argparse.Namespace) -> int:
    from app.cli_context import run_command
    from app.core.errors import NotFound
    from app.core.security import Role

    async def work(context: CommandContext) -> int:
        try:
            user = await context.user_service().set_role(args.email, Role(args.role))
        except NotFound as exc:
            print(f"sentinel: {exc.message}", file=sys.stderr)
            return 2
        print(f"{user.email} is now {user.role}")
        return 0

    return run_command(Settings(), args.migrate, work)


def _retention(args: argparse.Namespace) -> int:
    from app.cli_context import run_command
    from app.services.retention import RetentionKind

    async def work(context: CommandContext) -> int:
        report = await context.retention_service().run(dry_run=args.dry_run)
        if not report.ran:
            print("retention is already running in another process; nothing done")
            return 1
        verb = "would delete" if report.dry_run else "deleted"
        for item in report.items:
            if item.kind is RetentionKind.labelled_episodes_kept:
                print(
                    f"{'episodes':<18} {'kept':<{len(verb)}} {item.count:>8}  "
                    "(expired, but labelled by an operator: training data)"
                )
                continue
            print(
                f"{item.kind.value:<18} {verb} {item.count:>8}  "
                f"(older than {item.days} days: before {item.cutoff:%Y-%m-%d %H:%M} UTC)"
            )
        if not report.items:
            print("every RETENTION_*_DAYS is 0: nothing to do")
        return 0

    return run_command(Settings(), args.migrate, work)


def _eval_settings(args: argparse.Namespace, workdir: str) -> Settings:
    """The configured settings, or a throwaway embedded setup when `--docs` loads documents."""
    from app.core.settings import DatabaseSettings, LLMSettings, RedisSettings

    settings = Settings()
    if not args.docs:
        return settings
    llm = settings.llm.model_copy(update={"chroma_path": f"{workdir}/chroma", "chroma_host": ""})
    return settings.model_copy(
        update={
            "db": DatabaseSettings(url=f"sqlite+aiosqlite:///{workdir}/eval.db"),
            "redis": RedisSettings(url=""),
            "llm": LLMSettings.model_validate(llm.model_dump()),
        }
    )


def _eval_retrieval(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from app.container import Container
    from app.core.database import run_migrations
    from app.core.logging import setup_logging
    from app.services.retrieval import RetrievalMode
    from app.services.retrieval_eval import (
        document_title,
        evaluate,
        evaluate_path,
        load_cases,
        post_episodes,
    )

    try:
        cases = load_cases(Path(args.data))
    except (OSError, ValueError) as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        return 2
    if args.episodes and not args.docs:
        # Synthetic episodes go into a throwaway database only, never the configured one.
        print("sentinel: --episodes needs --docs (a throwaway knowledge base)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sentinel-eval-") as workdir:
        settings = _eval_settings(args, workdir)
        setup_logging(settings.log.model_copy(update={"level": "WARNING"}))
        run_migrations(settings.db.url)
        container = Container()
        container.settings.override(settings)

        documents = [
            (path.name, path.stem, path.read_text(encoding="utf-8"))
            for path in (sorted(Path(args.docs).iterdir()) if args.docs else [])
            if path.suffix in (".md", ".txt") and path.is_file()
        ]

        async def go() -> int:
            indexer = container.event_knowledge()
            try:
                knowledge = container.knowledge_service()
                for name, stem, text in documents:
                    await knowledge.create(document_title(text, stem), text, name, {}, True)
                if args.episodes:
                    await indexer.start()
                    await post_episodes(
                        container.event_service(), indexer, args.episodes, datetime.now(UTC)
                    )
                rag = container.rag_service()
                scores = await evaluate(rag, cases, list(RetrievalMode))
                path = await evaluate_path(rag, cases)
            finally:
                await indexer.stop()
                await container.database().dispose()
            print(f"{args.data}: {len(cases)} questions")
            if scores:
                print(f"{'ranking':<10} {'hit@1':>6} {'hit@3':>6} {'MRR':>6}")
            for s in scores:
                print(f"{s.mode.value:<10} {s.hit1:>6.3f} {s.hit3:>6.3f} {s.mrr:>6.3f}")
            # The whole question path: event intent, episodes, documents, relevance floor.
            print(f"full path (top 5, {args.episodes} synthetic episodes):")
            hybrid = next((s.hit1 for s in scores if s.mode is RetrievalMode.HYBRID), None)
            for p in path:
                measure = "not found" if p.kind == "ood" else "hit@1"
                line = f"{p.kind:<10} {p.questions:>3} questions  {measure} {p.hit1:.3f}"
                if p.kind == "document" and hybrid is not None:
                    line += f"  (document-only hybrid hit@1 {hybrid:.3f})"
                print(f"{line}  events asked {p.asked}/{p.questions}")
            if args.misses:
                for s in scores:
                    for question in s.misses:
                        print(f"miss [{s.mode.value}] {question}")
                for p in path:
                    for question in p.misses:
                        print(f"miss [full path, {p.kind}] {question}")
            return 0

        return asyncio.run(go())


def _knowledge_check(args: argparse.Namespace) -> int:
    from app.cli_context import run_command

    async def work(context: CommandContext) -> int:
        from app.clients.vector_store import EmbedderMismatch

        try:
            report = await context.knowledge_service().check(repair=args.repair)
        except EmbedderMismatch as exc:  # EMBEDDING_BACKEND changed since the index was built
            print(f"sentinel: {exc.message}", file=sys.stderr)
            return 1
        print(
            f"collection {report.collection}: {report.documents} documents, "
            f"{report.chunks} chunks in the database, {report.vectors} vectors"
        )
        print(f"chunks without a vector: {len(report.missing)}")
        print(f"vectors without a chunk (orphans): {len(report.orphans)}")
        print(f"indexed documents without chunks: {len(report.unchunked)}")
        if report.consistent:
            print("consistent")
            return 0
        if report.repaired:
            print("repaired")
            return 0
        print("drift found; run `sentinel knowledge check --repair` to fix it")
        return 1

    return run_command(Settings(), args.migrate, work)


def _settings_doc(args: argparse.Namespace) -> int:
    from app.core import settings_doc

    if args.env_example:
        sys.stdout.write(settings_doc.render_env_example())
    elif args.markdown:
        sys.stdout.write(settings_doc.render_markdown())
    else:
        changed = settings_doc.write_files()
        for path in changed:
            print(f"rewrote {path}")
        if not changed:
            print(".env.example and the README settings table are up to date")
    return 0


def _migrate_flag(parser: argparse.ArgumentParser) -> None:
    """`--migrate` on a command that only needs the database (it never migrates by itself)."""
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="upgrade the database schema first if it is behind (default: say so and exit 2)",
    )


def _describe(parser: argparse.ArgumentParser) -> None:
    """Each sub-command's `--help` opens with the line its parent lists for it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if sub.description is None:
                    sub.description = helps.get(name)
                _describe(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentinel", description="Sentinel backend")
    sub = parser.add_subparsers(dest="command", required=True, help="what to run")

    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument(
        "--host",
        default=None,
        help="bind address (default HOST; 127.0.0.1 in development, else 0.0.0.0)",
    )
    serve.add_argument("--port", type=int, default=None, help="port (default PORT or 8000)")
    serve.add_argument(
        "--workers", type=int, default=None, help="worker processes (default WORKERS or 1)"
    )
    serve.add_argument("--reload", action="store_true", help="reload on code changes (dev)")
    serve.set_defaults(handler=_serve)

    worker = sub.add_parser("worker", help="run background jobs from the Redis queue")
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="jobs at once (default JOB_WORKER_CONCURRENCY)",
    )
    worker.set_defaults(handler=_worker)

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
    _migrate_flag(admin)
    admin.set_defaults(handler=_create_admin)

    unlock = sub.add_parser(
        "unlock", help="clear an account's failed sign-in counters (every client)"
    )
    unlock.add_argument("email", help="the account's e-mail address")
    _migrate_flag(unlock)
    unlock.set_defaults(handler=_unlock)
    role = sub.add_parser("set-role", help="give an existing account a role")
    role.add_argument("email", help="the account's e-mail address")
    role.add_argument(
        "role",
        choices=["viewer", "operator", "admin"],
        help="viewer reads; operator also acts on alerts and episodes; admin manages everything",
    )
    _migrate_flag(role)
    role.set_defaults(handler=_set_role)
    retention = sub.add_parser(
        "retention", help="delete events, episodes, conversations and usage past RETENTION_*_DAYS"
    )
    retention.add_argument(
        "--dry-run", action="store_true", help="print what would be deleted, delete nothing"
    )
    _migrate_flag(retention)
    retention.set_defaults(handler=_retention)
    evaluate = sub.add_parser(
        "eval-retrieval", help="hit@1, hit@3 and MRR of hybrid, lexical and dense retrieval"
    )
    evaluate.add_argument(
        "--data",
        required=True,
        help='JSONL, one {"question": ..., "doc": title or id} (or "doc": null: out of domain; '
        'or "event": source id or *) a line',
    )
    evaluate.add_argument(
        "--docs",
        default=None,
        help="load the .md/.txt files of this folder into a throwaway embedded knowledge base "
        "(default: evaluate the configured one)",
    )
    evaluate.add_argument("--misses", action="store_true", help="list the questions missed")
    evaluate.add_argument(
        "--episodes",
        type=int,
        default=0,
        metavar="N",
        help="with --docs: first post N synthetic closed episodes (cam-lobby-1, cam-b1-parking, "
        "cam-3, cam-gym-2 over the last 3 days) and wait until their summaries are indexed",
    )
    evaluate.add_argument(
        "--from-feedback",
        metavar="OUT.jsonl",
        action=FeedbackExportAction,
        help="instead of evaluating: write each 👎 answer that names the right document as a "
        "question for --data, then exit",
    )
    evaluate.set_defaults(handler=_eval_retrieval)

    knowledge = sub.add_parser("knowledge", help="knowledge base maintenance")
    knowledge_sub = knowledge.add_subparsers(
        dest="knowledge_command", required=True, help="what to do with the knowledge base"
    )
    check = knowledge_sub.add_parser(
        "check", help="compare the database's chunks with the vector store (exit 1 on drift)"
    )
    check.add_argument(
        "--repair", action="store_true", help="write missing vectors, delete orphan vectors"
    )
    _migrate_flag(check)
    check.set_defaults(handler=_knowledge_check)
    docs = sub.add_parser(
        "settings", help="print or rewrite the settings documentation (from the Settings class)"
    )
    what = docs.add_mutually_exclusive_group(required=True)
    what.add_argument("--env-example", action="store_true", help="print .env.example")
    what.add_argument("--markdown", action="store_true", help="print the README settings table")
    what.add_argument(
        "--write", action="store_true", help="rewrite .env.example and the README table in place"
    )
    docs.set_defaults(handler=_settings_doc)

    for register in EXTRA_COMMANDS:
        register(sub)
    _describe(parser)
    return parser


# Later layers (the behaviour model) register sub-commands here.
EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []

from app.cli_model import register_behavior_commands  # noqa: E402  (torch is imported lazily)

EXTRA_COMMANDS.append(register_behavior_commands)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ValidationError as exc:
        if not exc.title.endswith("Settings"):
            raise
        # A bad environment variable: one line each, not a traceback.
        for line in settings_error_lines(exc):
            print(f"sentinel: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
