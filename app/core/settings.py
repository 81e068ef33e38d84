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
    )
    migrate_on_start: bool = Field(True, validation_alias=_env("DB_MIGRATE_ON_START"))
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
        "/docs,/docs/*,/redoc,/openapi.json,/health,/health/*,/favicon.ico,/console,/console/*",
        validation_alias=_env("AUTH_EXEMPT_PATHS"),
    )
    cors_origins: str = Field("", validation_alias=_env("CORS_ORIGINS"))
    max_body_bytes: int = Field(2_000_000, ge=1024, validation_alias=_env("MAX_BODY_BYTES"))
    data_encryption_key: str = Field("", validation_alias=_env("DATA_ENCRYPTION_KEY"))
    # Who may sign up (register, first Google sign-in): open, invite (an admin's invite code)
    # or closed. Empty = `open` in development, `closed` in staging and production.
    registration: str = Field(
        "", pattern="^(|open|invite|closed)$", validation_alias=_env("REGISTRATION")
    )
    jwt_issuer: str = Field("sentinel", validation_alias=_env("JWT_ISSUER"))
    jwt_audience: str = Field("sentinel-api", validation_alias=_env("JWT_AUDIENCE"))
    # How long a process trusts what it knows of an account (active, role, token version).
    auth_state_cache_secs: float = Field(
        5.0, ge=0, le=300, validation_alias=_env("AUTH_STATE_CACHE_SECS")
    )
    login_max_failures_per_account: str = Field(
        "10/15 minutes", validation_alias=_env("LOGIN_MAX_FAILURES_PER_ACCOUNT")
    )
    login_max_per_client: str = Field(
        "20/minute;200/hour", validation_alias=_env("LOGIN_MAX_PER_CLIENT")
    )
    google_client_id: str = Field("", validation_alias=_env("GOOGLE_CLIENT_ID"))
    google_jwks_url: str = Field(
        "https://www.googleapis.com/oauth2/v3/certs", validation_alias=_env("GOOGLE_JWKS_URL")
    )
    google_timeout_secs: float = Field(5.0, gt=0, validation_alias=_env("GOOGLE_TIMEOUT_SECS"))
    # An unknown key id refetches the key set at most this often (tokens with made-up kids
    # must not make us hammer Google).
    google_jwks_refresh_cooldown_secs: float = Field(
        30.0, ge=0, validation_alias=_env("GOOGLE_JWKS_REFRESH_COOLDOWN_SECS")
    )
    stream_max_subscribers: int = Field(200, ge=1, validation_alias=_env("STREAM_MAX_SUBSCRIBERS"))
    stream_max_per_principal: int = Field(
        5, ge=1, validation_alias=_env("STREAM_MAX_PER_PRINCIPAL")
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


# Every alert channel Sentinel has a notifier for (ALERT_CHANNELS picks among them).
ALERT_CHANNEL_NAMES = ("kakao", "slack", "webhook", "email")


class AlertSettings(BaseSettings):
    """Alerts: channels (Kakao, Slack, signed webhook, e-mail), the outbox dispatcher,
    routing, escalation, texts and budgets."""

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

    # Channels beyond Kakao: empty ALERT_CHANNELS means `kakao`.
    channels: str = Field("", validation_alias=_env("ALERT_CHANNELS"))
    slack_webhook_url: str = Field("", validation_alias=_env("SLACK_WEBHOOK_URL"))
    webhook_url: str = Field("", validation_alias=_env("WEBHOOK_URL"))
    webhook_secret: str = Field("", validation_alias=_env("WEBHOOK_SECRET"))
    smtp_host: str = Field("", validation_alias=_env("SMTP_HOST"))
    smtp_port: int = Field(587, ge=1, le=65535, validation_alias=_env("SMTP_PORT"))
    smtp_username: str = Field("", validation_alias=_env("SMTP_USERNAME"))
    smtp_password: str = Field("", validation_alias=_env("SMTP_PASSWORD"))
    smtp_starttls: bool = Field(False, validation_alias=_env("SMTP_STARTTLS"))
    email_from: str = Field("", validation_alias=_env("ALERT_EMAIL_FROM"))
    email_to: str = Field("", validation_alias=_env("ALERT_EMAIL_TO"))
    http_timeout_secs: float = Field(5.0, gt=0, validation_alias=_env("ALERT_HTTP_TIMEOUT_SECS"))
    routes_file: str = Field("", validation_alias=_env("ALERT_ROUTES_FILE"))
    escalate_after_secs: int = Field(0, ge=0, validation_alias=_env("ALERT_ESCALATE_AFTER_SECS"))
    escalation_channels: str = Field("", validation_alias=_env("ALERT_ESCALATION_CHANNELS"))
    language: str = Field(
        "ko,en",
        pattern=r"^\s*(ko|en)\s*(,\s*(ko|en)\s*)?$",
        validation_alias=_env("ALERT_LANGUAGE"),
    )
    timezone: str = Field("Asia/Seoul", validation_alias=_env("ALERT_TIMEZONE"))
    max_per_hour: int = Field(60, ge=0, validation_alias=_env("ALERT_MAX_PER_HOUR"))
    offline_alerts: bool = Field(True, validation_alias=_env("ALERT_SOURCE_OFFLINE"))
    monitor_interval_secs: float = Field(
        5.0, gt=0, validation_alias=_env("ALERT_MONITOR_INTERVAL_SECS")
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
        """The channels that get alerts (before routing). Empty ALERT_CHANNELS means Kakao:
        without its tokens each alert stays pending until a dispatcher records it as
        undeliverable with the settings to set."""
        return self._names(self.channels) or ["kakao"]

    @property
    def escalation_channel_names(self) -> list[str]:
        return self._names(self.escalation_channels)

    @property
    def languages(self) -> list[str]:
        return self._names(self.language)


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
    # Hybrid retrieval: BM25 over Korean morphemes fused with the dense ranking (RRF).
    retrieval_candidates: int = Field(
        50, ge=1, le=500, validation_alias=_env("RAG_RETRIEVAL_CANDIDATES")
    )
    fusion_k: int = Field(10, ge=1, validation_alias=_env("RAG_FUSION_K"))
    lexical_weight: float = Field(1.0, ge=0, validation_alias=_env("RAG_LEXICAL_WEIGHT"))
    # The packaged embedding model (all-MiniLM-L6-v2) is English-only: it ranks well for
    # English questions and barely better than chance for Korean ones (README, eval table).
    dense_weight: float = Field(2.0, ge=0, validation_alias=_env("RAG_DENSE_WEIGHT"))
    dense_weight_ko: float = Field(0.1, ge=0, validation_alias=_env("RAG_DENSE_WEIGHT_KO"))
    # `model=input/output` US dollars per 1M tokens, comma separated; `provider:model` also works.
    prices: str = Field(
        "gemini-2.5-flash=0.30/2.50,gemini-2.5-flash-lite=0.10/0.40,gpt-4o-mini=0.15/0.60",
        validation_alias=_env("LLM_PRICES"),
    )
    monthly_budget_usd: float = Field(0.0, ge=0, validation_alias=_env("LLM_MONTHLY_BUDGET_USD"))

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

    events_days: int = Field(30, ge=0, validation_alias=_env("RETENTION_EVENTS_DAYS"))
    heartbeats_days: int = Field(3, ge=0, validation_alias=_env("RETENTION_HEARTBEATS_DAYS"))
    episodes_days: int = Field(90, ge=0, validation_alias=_env("RETENTION_EPISODES_DAYS"))
    conversations_days: int = Field(30, ge=0, validation_alias=_env("RETENTION_CONVERSATIONS_DAYS"))
    llm_usage_days: int = Field(400, ge=0, validation_alias=_env("RETENTION_LLM_USAGE_DAYS"))
    interval_secs: float = Field(3600.0, gt=0, validation_alias=_env("RETENTION_INTERVAL_SECS"))
    batch_size: int = Field(1000, ge=1, validation_alias=_env("RETENTION_BATCH_SIZE"))
    enabled: bool = Field(True, validation_alias=_env("RETENTION_ENABLED"))


class RateLimitSettings(BaseSettings):
    """Per-principal rate limits by route group (limits library syntax)."""

    model_config = _COMMON

    enabled: bool = Field(True, validation_alias=_env("RATE_LIMIT_ENABLED"))
    default: str = Field("600/minute", validation_alias=_env("RATE_LIMIT_DEFAULT"))
    events: str = Field("6000/minute", validation_alias=_env("RATE_LIMIT_EVENTS"))
    analyze: str = Field("3000/minute", validation_alias=_env("RATE_LIMIT_ANALYZE"))
    ask: str = Field("30/minute", validation_alias=_env("RATE_LIMIT_ASK"))
    auth: str = Field("30/minute", validation_alias=_env("RATE_LIMIT_AUTH"))


class JobSettings(BaseSettings):
    """Background jobs: taskiq on Redis (`sentinel worker`), or in the web process without Redis."""

    model_config = _COMMON

    queue_name: str = Field(
        "jobs", pattern=r"^[A-Za-z0-9_.:-]{1,64}$", validation_alias=_env("JOB_QUEUE_NAME")
    )
    max_attempts: int = Field(3, ge=1, le=20, validation_alias=_env("JOB_MAX_ATTEMPTS"))
    retry_base_secs: float = Field(2.0, gt=0, validation_alias=_env("JOB_RETRY_BASE_SECS"))
    retry_max_secs: float = Field(60.0, gt=0, validation_alias=_env("JOB_RETRY_MAX_SECS"))
    lease_secs: float = Field(600.0, ge=10, validation_alias=_env("JOB_LEASE_SECS"))
    worker_concurrency: int = Field(2, ge=1, validation_alias=_env("JOB_WORKER_CONCURRENCY"))
    # With Redis, jobs normally run in `sentinel worker`; true = the web process runs them too
    # (one server with Redis and no separate worker).
    web_consumes: bool = Field(False, validation_alias=_env("JOB_WEB_CONSUMES"))
    upload_max_bytes: int = Field(
        50_000_000, ge=1024, validation_alias=_env("JOB_UPLOAD_MAX_BYTES")
    )
    import_max_files: int = Field(10_000, ge=1, validation_alias=_env("JOB_IMPORT_MAX_FILES"))
    import_max_unpacked_bytes: int = Field(
        200_000_000, ge=1024, validation_alias=_env("JOB_IMPORT_MAX_UNPACKED_BYTES")
    )


class Settings(BaseSettings):
    """All of Sentinel's configuration."""

    model_config = _COMMON

    environment: Environment = Field(Environment.development, validation_alias=_env("ENVIRONMENT"))
    app_name: str = Field("Sentinel", validation_alias=_env("APP_NAME"))
    # Empty: 127.0.0.1 in development (open routes stay on this machine), 0.0.0.0 otherwise.
    host: str = Field("", validation_alias=_env("HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_env("PORT"))
    workers: int = Field(1, ge=1, validation_alias=_env("WORKERS"))
    shutdown_timeout_secs: float = Field(20.0, gt=0, validation_alias=_env("SHUTDOWN_TIMEOUT_SECS"))
    metrics_public: bool = Field(False, validation_alias=_env("METRICS_PUBLIC"))
    metrics_multiproc_dir: str = Field("", validation_alias=_env("PROMETHEUS_MULTIPROC_DIR"))

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
