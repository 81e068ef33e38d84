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
    )
    migrate_on_start: bool = Field(True, validation_alias=_env("DB_MIGRATE_ON_START"))
    # `sentinel serve/migrate` create a missing PostgreSQL database instead of stopping.
    create_if_missing: bool = Field(False, validation_alias=_env("DB_CREATE_IF_MISSING"))
    pool_size: int = Field(10, ge=1, validation_alias=_env("DB_POOL_SIZE"))
    max_overflow: int = Field(10, ge=0, validation_alias=_env("DB_MAX_OVERFLOW"))
    pool_timeout_secs: float = Field(5.0, gt=0, validation_alias=_env("DB_POOL_TIMEOUT_SECS"))
    connect_timeout_secs: float = Field(3.0, gt=0, validation_alias=_env("DB_CONNECT_TIMEOUT_SECS"))
    echo: bool = Field(False, validation_alias=_env("DB_ECHO"))

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class RedisSettings(BaseSettings):
    """Redis connection; an empty URL means no Redis (in-process fallbacks)."""

    model_config = _COMMON

    url: str = Field("", validation_alias=_env("REDIS_URL"))
    key_prefix: str = Field("sentinel:", validation_alias=_env("REDIS_KEY_PREFIX"))
    max_connections: int = Field(50, ge=1, validation_alias=_env("REDIS_MAX_CONNECTIONS"))
    socket_timeout_secs: float = Field(
        1.0, gt=0, validation_alias=_env("REDIS_SOCKET_TIMEOUT_SECS")
    )
    health_check_interval_secs: int = Field(
        15, ge=0, validation_alias=_env("REDIS_HEALTH_CHECK_INTERVAL_SECS")
    )
    retry_interval_secs: float = Field(
        2.0, gt=0, validation_alias=_env("REDIS_RETRY_INTERVAL_SECS")
    )

    @property
    def enabled(self) -> bool:
        return bool(self.url.strip())


class LogSettings(BaseSettings):
    """Logging through loguru."""

    model_config = _COMMON

    level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    format: str = Field("console", pattern="^(console|json)$", validation_alias=_env("LOG_FORMAT"))
    file_path: str = Field("", validation_alias=_env("LOG_FILE_PATH"))
    rotation: str = Field("100 MB", validation_alias=_env("LOG_ROTATION"))
    retention: str = Field("30 days", validation_alias=_env("LOG_RETENTION"))
    compression: str = Field("gz", validation_alias=_env("LOG_COMPRESSION"))
    access_log: bool = Field(True, validation_alias=_env("LOG_ACCESS"))


class SecuritySettings(BaseSettings):
    """JWT, the production bearer gate, CORS, body limits and encryption at rest."""

    model_config = _COMMON

    jwt_secret: str = Field("", validation_alias=_env("JWT_SECRET"))
    jwt_expire_minutes: int = Field(60, ge=1, validation_alias=_env("JWT_EXPIRE_MINUTES"))
    access_token: str = Field("", validation_alias=_env("ACCESS_TOKEN"))
    auth_exempt_paths: str = Field(
        "/docs,/docs/*,/redoc,/openapi.json,/health,/health/*,/favicon.ico",
        validation_alias=_env("AUTH_EXEMPT_PATHS"),
    )
    cors_origins: str = Field("", validation_alias=_env("CORS_ORIGINS"))
    max_body_bytes: int = Field(2_000_000, ge=1024, validation_alias=_env("MAX_BODY_BYTES"))
    data_encryption_key: str = Field("", validation_alias=_env("DATA_ENCRYPTION_KEY"))

    @property
    def exempt_paths(self) -> list[str]:
        return [p.strip() for p in self.auth_exempt_paths.split(",") if p.strip()]


class ModelSettings(BaseSettings):
    """The behaviour LSTM and its micro-batching server."""

    model_config = _COMMON

    checkpoint_path: str = Field(
        str(ROOT_DIR / "data" / "models" / "behavior_lstm.pt"),
        validation_alias=_env("MODEL_CHECKPOINT_PATH"),
    )
    anomaly_threshold: float | None = Field(
        None, ge=0, le=1, validation_alias=_env("ANOMALY_THRESHOLD")
    )
    max_sequence_length: int = Field(1000, ge=1, validation_alias=_env("MAX_SEQUENCE_LENGTH"))
    batch_max_size: int = Field(64, ge=1, validation_alias=_env("BATCH_MAX_SIZE"))
    batch_max_wait_ms: float = Field(2.0, ge=0, validation_alias=_env("BATCH_MAX_WAIT_MS"))
    torch_num_threads: int = Field(1, ge=1, validation_alias=_env("TORCH_NUM_THREADS"))

    @field_validator("anomaly_threshold", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v


class EventSettings(BaseSettings):
    """Event ingest, recent-event caches and sources."""

    model_config = _COMMON

    log_path: str = Field(
        str(ROOT_DIR / "logs" / "events.jsonl"), validation_alias=_env("EVENT_LOG_PATH")
    )
    log_rotation: str = Field("100 MB", validation_alias=_env("EVENT_LOG_ROTATION"))
    batch_max: int = Field(500, ge=1, validation_alias=_env("EVENT_BATCH_MAX"))
    ingest_group_max: int = Field(64, ge=1, validation_alias=_env("EVENT_INGEST_GROUP_MAX"))
    recent_max: int = Field(200, ge=1, validation_alias=_env("EVENT_RECENT_MAX"))
    metadata_max_bytes: int = Field(
        16_384, ge=64, validation_alias=_env("EVENT_METADATA_MAX_BYTES")
    )
    store_heartbeats: bool = Field(False, validation_alias=_env("EVENT_STORE_HEARTBEATS"))
    source_offline_after_secs: int = Field(
        60, ge=1, validation_alias=_env("SOURCE_OFFLINE_AFTER_SECS")
    )


class AlertSettings(BaseSettings):
    """Kakao "send to me" alerts delivered through the outbox dispatcher."""

    model_config = _COMMON

    kakao_api_base_url: str = Field(
        "https://kapi.kakao.com", validation_alias=_env("KAKAO_API_BASE_URL")
    )
    kakao_auth_base_url: str = Field(
        "https://kauth.kakao.com", validation_alias=_env("KAKAO_AUTH_BASE_URL")
    )
    kakao_rest_api_key: str = Field("", validation_alias=_env("KAKAO_REST_API_KEY"))
    kakao_client_secret: str = Field("", validation_alias=_env("KAKAO_CLIENT_SECRET"))
    kakao_access_token: str = Field("", validation_alias=_env("KAKAO_ACCESS_TOKEN"))
    kakao_refresh_token: str = Field("", validation_alias=_env("KAKAO_REFRESH_TOKEN"))
    kakao_timeout_secs: float = Field(5.0, gt=0, validation_alias=_env("KAKAO_TIMEOUT_SECS"))
    link_url: str = Field("http://localhost:8000/docs", validation_alias=_env("ALERT_LINK_URL"))
    button_title: str = Field("Open Sentinel", validation_alias=_env("ALERT_BUTTON_TITLE"))
    max_attempts: int = Field(6, ge=1, validation_alias=_env("ALERT_MAX_ATTEMPTS"))
    retry_base_secs: float = Field(1.0, gt=0, validation_alias=_env("ALERT_RETRY_BASE_SECS"))
    retry_max_secs: float = Field(60.0, gt=0, validation_alias=_env("ALERT_RETRY_MAX_SECS"))
    cooldown_secs: int = Field(300, ge=0, validation_alias=_env("ALERT_COOLDOWN_SECS"))
    dispatch_interval_secs: float = Field(
        1.0, gt=0, validation_alias=_env("ALERT_DISPATCH_INTERVAL_SECS")
    )
    dispatcher_enabled: bool = Field(True, validation_alias=_env("ALERT_DISPATCHER_ENABLED"))
    claim_lease_secs: float = Field(60.0, gt=0, validation_alias=_env("ALERT_CLAIM_LEASE_SECS"))

    @property
    def kakao_configured(self) -> bool:
        return bool(self.kakao_access_token or self.kakao_refresh_token)


class LLMSettings(BaseSettings):
    """LLM providers, the fallback chain and the RAG pipeline."""

    model_config = _COMMON

    gemini_api_key: str = Field("", validation_alias=_env("GEMINI_API_KEY"))
    gemini_base_url: str = Field("", validation_alias=_env("GEMINI_BASE_URL"))
    primary_model: str = Field("gemini-2.5-flash", validation_alias=_env("RAG_PRIMARY_MODEL"))
    fallback_models: str = Field(
        "gemini-2.5-flash-lite", validation_alias=_env("RAG_LLM_FALLBACK_MODELS")
    )
    openai_api_key: str = Field("", validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str = Field("", validation_alias=_env("OPENAI_BASE_URL"))
    openai_models: str = Field("gpt-4o-mini", validation_alias=_env("OPENAI_MODELS"))
    quota_cooldown_secs: int = Field(600, ge=0, validation_alias=_env("RAG_QUOTA_COOLDOWN_SECS"))
    timeout_secs: float = Field(30.0, gt=0, validation_alias=_env("LLM_TIMEOUT_SECS"))
    max_attempts: int = Field(3, ge=1, le=10, validation_alias=_env("LLM_MAX_ATTEMPTS"))
    backoff_base_secs: float = Field(1.0, ge=0, validation_alias=_env("LLM_BACKOFF_BASE_SECS"))
    backoff_max_secs: float = Field(4.0, ge=0, validation_alias=_env("LLM_BACKOFF_MAX_SECS"))

    chroma_path: str = Field(
        str(ROOT_DIR / "data" / "chromadb-data"), validation_alias=_env("CHROMA_PATH")
    )
    chroma_host: str = Field("", validation_alias=_env("CHROMA_HOST"))
    chroma_port: int = Field(8000, validation_alias=_env("CHROMA_PORT"))
    chroma_collection: str = Field("knowledge", validation_alias=_env("CHROMA_COLLECTION"))
    embedding_model: str = Field("", validation_alias=_env("EMBEDDING_MODEL"))
    chunk_size: int = Field(800, ge=50, validation_alias=_env("RAG_CHUNK_SIZE"))
    chunk_overlap: int = Field(100, ge=0, validation_alias=_env("RAG_CHUNK_OVERLAP"))
    cache_ttl_secs: int = Field(300, ge=0, validation_alias=_env("RAG_CACHE_TTL_SECS"))
    semantic_cache: bool = Field(False, validation_alias=_env("RAG_SEMANTIC_CACHE"))
    semantic_cache_threshold: float = Field(
        0.9, ge=0, le=1, validation_alias=_env("RAG_SEMANTIC_CACHE_THRESHOLD")
    )
    semantic_cache_ttl_secs: int = Field(
        28 * 24 * 3600, ge=0, validation_alias=_env("RAG_SEMANTIC_CACHE_TTL_SECS")
    )
    pii_masking: bool = Field(False, validation_alias=_env("RAG_PII_MASKING"))
    notice_language: str = Field("ko,en", validation_alias=_env("RAG_NOTICE_LANGUAGE"))
    history_turns: int = Field(4, ge=0, validation_alias=_env("RAG_HISTORY_TURNS"))


class RateLimitSettings(BaseSettings):
    """Per-principal rate limits by route group (limits library syntax)."""

    model_config = _COMMON

    enabled: bool = Field(True, validation_alias=_env("RATE_LIMIT_ENABLED"))
    default: str = Field("600/minute", validation_alias=_env("RATE_LIMIT_DEFAULT"))
    events: str = Field("6000/minute", validation_alias=_env("RATE_LIMIT_EVENTS"))
    analyze: str = Field("3000/minute", validation_alias=_env("RATE_LIMIT_ANALYZE"))
    ask: str = Field("30/minute", validation_alias=_env("RATE_LIMIT_ASK"))
    auth: str = Field("30/minute", validation_alias=_env("RATE_LIMIT_AUTH"))


class Settings(BaseSettings):
    """All of Sentinel's configuration."""

    model_config = _COMMON

    environment: Environment = Field(Environment.development, validation_alias=_env("ENVIRONMENT"))
    app_name: str = Field("Sentinel", validation_alias=_env("APP_NAME"))
    host: str = Field("0.0.0.0", validation_alias=_env("HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_env("PORT"))
    workers: int = Field(1, ge=1, validation_alias=_env("WORKERS"))
    shutdown_timeout_secs: float = Field(20.0, gt=0, validation_alias=_env("SHUTDOWN_TIMEOUT_SECS"))
    metrics_public: bool = Field(False, validation_alias=_env("METRICS_PUBLIC"))
    metrics_multiproc_dir: str = Field("", validation_alias=_env("PROMETHEUS_MULTIPROC_DIR"))
    # Language of error messages when a request sends no usable Accept-Language.
    default_language: Language = Field(Language.EN, validation_alias=_env("DEFAULT_LANGUAGE"))

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
