"""Pytest plugin: every log line written during the suite is scanned for credentials.

Each app built by a test re-runs `setup_logging` (which removes all sinks), so the audit
sink is re-attached after it. At the end of the session any JWT, bearer value or suite
secret found in a log line fails the run.
"""

from __future__ import annotations

import re

import pytest
from loguru import logger

import app.main

_SUSPICIOUS = re.compile(
    r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.|(?i:bearer)\s+(?!\*\*\*)[A-Za-z0-9\-._~+/]{8,}"
    r"|test-jwt-secret-for-the-suite-|service-token-for-the-|hunter2-Very-Secret"
)
_FINDINGS: list[str] = []


def _audit(message) -> None:
    text = str(message)
    if _SUSPICIOUS.search(text):
        _FINDINGS.append(text[:300])


_original_setup = app.main.setup_logging


def _setup_with_audit(settings) -> None:
    _original_setup(settings)
    logger.add(_audit, level=0, format="{message} | {extra} | {exception}")


@pytest.fixture(scope="session", autouse=True)
def audit_logs_for_secrets():
    app.main.setup_logging = _setup_with_audit
    yield
    app.main.setup_logging = _original_setup


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _FINDINGS:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("credentials found in log output:", red=True)
            for line in _FINDINGS[:10]:
                reporter.write_line("  " + line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
