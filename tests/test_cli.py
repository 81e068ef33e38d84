"""`sentinel migrate` / `create-admin` / `serve` tell the truth (issue 15 item 4)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

SENTINEL = str(Path(sys.executable).with_name("sentinel"))
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"


def run(tmp_path: Path, *args: str, stdin: str | None = None, **env: str):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DB_"))}
    full_env = {
        **base,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 's.db'}",
        "LOG_LEVEL": "WARNING",
        "CHROMA_PATH": str(tmp_path / "chroma"),
        **env,
    }
    return subprocess.run(
        [SENTINEL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=full_env,
        timeout=240,
    )


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app.core.settings import ROOT_DIR

    head = ScriptDirectory.from_config(Config(str(ROOT_DIR / "alembic.ini"))).get_current_head()
    assert head is not None
    return head


def test_migrate_upgrades_and_downgrades_to_named_revisions(tmp_path):
    head = _head()
    r = run(tmp_path, "migrate", "--revision", "0002_events")
    assert r.returncode == 0 and "upgraded from base to 0002_events" in r.stdout, r.stderr
    assert f"upgraded from 0002_events to {head}" in run(tmp_path, "migrate").stdout
    r = run(tmp_path, "migrate", "--revision", "0002_events")
    assert r.returncode == 2 and "--downgrade" in r.stderr
    assert r.stderr.count("\n") == 1
    r = run(tmp_path, "migrate", "--revision", "base", "--downgrade")
    assert r.returncode == 0 and f"downgraded from {head} to base" in r.stdout, r.stderr
    assert "already at" in run(tmp_path, "migrate", "--revision", "base").stdout


def test_migrate_unknown_revision_is_one_line(tmp_path):
    r = run(tmp_path, "migrate", "--revision", "nope")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown revision 'nope'" in r.stderr
    assert "Traceback" not in r.stderr


def test_create_admin_validates_reads_stdin_and_refuses_to_overwrite(tmp_path):
    r = run(tmp_path, "create-admin", "--email", "bad", stdin="pass1234word\n")
    assert r.returncode == 2 and "not a valid e-mail" in r.stderr
    r = run(
        tmp_path, "create-admin", "--email", "boss@example.com", "--migrate", stdin="pass1234word\n"
    )
    assert r.returncode == 0 and "admin created" in r.stdout, r.stderr
    r = run(tmp_path, "create-admin", "--email", "boss@example.com", stdin="other5678pass\n")
    assert r.returncode == 2 and "--reset-password" in r.stderr
    r = run(
        tmp_path,
        "create-admin",
        "--email",
        "boss@example.com",
        "--reset-password",
        stdin="other5678pass\n",
    )
    assert r.returncode == 0 and "admin updated" in r.stdout, r.stderr


def test_every_option_has_help_text(tmp_path):
    from app.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in ("serve", "migrate", "create-admin"):
        for action in sub.choices[name]._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, (name, action.option_strings)


def test_serve_on_an_unreachable_postgres_says_so_in_one_line(tmp_path):
    r = run(tmp_path, "serve", DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/x")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = [x for x in r.stderr.splitlines() if x.startswith("sentinel:")]
    assert len(line) == 1 and "cannot reach PostgreSQL at 127.0.0.1:1" in line[0]


# Part of the PostgreSQL run of the suite (the SQLite run checks the unreachable case above).
if (os.environ.get("TEST_DATABASE_URL") or "").startswith("postgresql"):

    async def test_serve_on_a_missing_postgres_database_says_so_in_one_line_or_creates_it(tmp_path):
        name = f"sentinel_missing_{uuid.uuid4().hex[:8]}"
        r = run(tmp_path, "serve", "--port", "1", DATABASE_URL=PG + name)
        assert r.returncode == 2
        line = [x for x in r.stderr.splitlines() if x.startswith("sentinel:")]
        assert len(line) == 1 and f'"{name}" does not exist' in line[0] and "createdb" in line[0]
        assert "Traceback" not in r.stderr
        r = run(tmp_path, "migrate", DATABASE_URL=PG + name, DB_CREATE_IF_MISSING="true")
        assert r.returncode == 0, r.stderr
        engine = create_async_engine(PG + "postgres", isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()


async def test_eval_retrieval_from_feedback_writes_down_votes_with_a_corrected_document(tmp_path):
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from app.models import AnswerFeedback, Conversation, ConversationTurn, KnowledgeDocument
    from app.models.feedback import Rating
    from app.services.retrieval_eval import load_cases

    assert run(tmp_path, "migrate").returncode == 0
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    doc = KnowledgeDocument(
        title="낙상 알림 대응 절차", content="낙상 알림이 오면 2분 안에 연락합니다"
    )
    conversation = Conversation()
    turns = {
        question: ConversationTurn(
            conversation=conversation, question=question, answer="…", provider="local", model="x"
        )
        for question in ("낙상 알림이 오면?", "fire drill?", "good answer?", "no document?")
    }
    async with async_sessionmaker(engine).begin() as session:
        session.add_all([doc, conversation, *turns.values()])
        await session.flush()
        session.add_all(
            [
                AnswerFeedback(
                    turn_id=turns["낙상 알림이 오면?"].id, rating=Rating.DOWN, doc_id=doc.id
                ),
                AnswerFeedback(turn_id=turns["fire drill?"].id, rating=Rating.DOWN, doc_id=doc.id),
                AnswerFeedback(turn_id=turns["good answer?"].id, rating=Rating.UP, doc_id=doc.id),
                AnswerFeedback(turn_id=turns["no document?"].id, rating=Rating.DOWN),
            ]
        )
    await engine.dispose()

    out = tmp_path / "feedback.jsonl"
    r = run(tmp_path, "eval-retrieval", "--from-feedback", str(out))
    assert r.returncode == 0, r.stderr
    assert "2 questions" in r.stdout
    cases = load_cases(out)  # what `--data` reads
    assert sorted((c.question, c.doc) for c in cases) == [
        ("fire drill?", "낙상 알림 대응 절차"),
        ("낙상 알림이 오면?", "낙상 알림 대응 절차"),
    ]
    r = run(tmp_path, "eval-retrieval", "--from-feedback", str(tmp_path / "missing" / "x.jsonl"))
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr


def test_eval_retrieval_posts_episodes_and_scores_the_full_question_path(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "duty.md").write_text(
        "# 당직 규정\n\n야간 당직은 오후 6시에 시작하여 다음 날 오전 9시에 끝납니다.\n",
        encoding="utf-8",
    )
    data = tmp_path / "mixed.jsonl"
    data.write_text(
        '{"question": "야간 당직은 몇 시에 시작하나요?", "doc": "당직 규정"}\n'
        '{"question": "cam-3에서 어제 무슨 일이 있었나요?", "event": "cam-3"}\n'
        '{"question": "What happened at the cameras last night?", "event": "*"}\n'
        '{"question": "🤔🤔🤔", "doc": null}\n',
        encoding="utf-8",
    )
    r = run(tmp_path, "eval-retrieval", "--data", str(data), "--episodes", "4")
    assert r.returncode == 2 and "--episodes needs --docs" in r.stderr, r.stderr

    r = run(tmp_path, "eval-retrieval", "--data", str(data), "--docs", str(docs), "--episodes", "8")

    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].endswith("mixed.jsonl: 4 questions") and lines[1].startswith("ranking")
    assert "full path (top 5, 8 synthetic episodes):" in lines
    document = next(x for x in lines if x.startswith("document "))
    assert "1 questions  hit@1 1.000  (document-only hybrid hit@1 1.000)" in document
    assert "events asked 0/1" in document
    event = next(x for x in lines if x.startswith("event "))
    assert "2 questions  hit@1 1.000  events asked 2/2" in event
    assert any(x.startswith("ood ") and "1 questions  not found" in x for x in lines)


# --- a bad setting is one line, not a traceback ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("ENVIRONMENT", "producton", "'development', 'staging' or 'production'"),
        ("PORT", "abc", "valid integer"),
        ("LOG_LEVEL", "verbose", "choose from TRACE, DEBUG, INFO"),
        ("ALERT_CHANNELS", "telegram", "choose from kakao, slack, webhook, email"),
        ("DATABASE_URL", "notaurl", "sqlite+aiosqlite:///PATH"),
        ("DATABASE_URL", "mysql://db/sentinel", "driver 'mysql' is not supported"),
        ("REDIS_URL", "localhost:6379", "redis://host:6379/0"),
        ("TRUSTED_PROXIES", "*", "list the proxies' addresses or CIDRs"),
    ],
)
@pytest.mark.parametrize(
    "command", [["serve"], ["retention", "--dry-run"], ["set-role", "a@b.c", "admin"]]
)
def test_a_bad_setting_is_one_line_naming_it_and_exit_2(
    monkeypatch, capsys, name, value, accepted, command
):
    from app.cli import main

    monkeypatch.setenv(name, value)
    assert main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"sentinel: {name}={value!r} is not accepted: ")
    assert accepted in err[0]


def test_a_bad_setting_never_echoes_a_password(monkeypatch, capsys):
    from app.cli import main

    monkeypatch.setenv("DATABASE_URL", "mysql://sentinel:hunter2-secret@db/sentinel")
    assert main(["retention", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err and "mysql://sentinel:***@db/sentinel" in err


def _parsers(parser: argparse.ArgumentParser, prefix: str = "sentinel"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prefix} {name}")


def test_every_sub_command_and_argument_has_help_text():
    """A newcomer's `--help` explains every argument (issue 26, point 5)."""
    from app.cli import build_parser

    missing = [
        f"{command} {action.option_strings or action.dest}"
        for command, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
        and (not action.help or action.help == argparse.SUPPRESS)
    ]
    assert not missing, missing
