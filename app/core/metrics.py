"""Prometheus metric families shared by every layer (exposed at /metrics).

Defined in one place so names stay consistent; each layer only calls `.labels(...).inc()/observe()`.
With several worker processes, set `PROMETHEUS_MULTIPROC_DIR` (the `/metrics` endpoint then
aggregates across processes through prometheus_client's multiprocess collector).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "sentinel_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "sentinel_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)

INFERENCE_LATENCY = Histogram(
    "sentinel_inference_duration_seconds",
    "Behaviour model forward pass latency (one batch)",
    buckets=_LATENCY_BUCKETS,
)
INFERENCE_BATCH_SIZE = Histogram(
    "sentinel_inference_batch_size",
    "Sequences per forward pass",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)

EVENTS_INGESTED = Counter(
    "sentinel_events_ingested_total", "Events accepted", ["event_type", "duplicate"]
)

ALERTS = Counter("sentinel_alerts_total", "Alert state transitions", ["status"])
ALERT_DELIVERY_LATENCY = Histogram(
    "sentinel_alert_delivery_seconds",
    "From alert creation to confirmed delivery",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)

LLM_CALLS = Counter(
    "sentinel_llm_calls_total", "LLM provider calls", ["provider", "model", "outcome"]
)
LLM_COOLDOWN = Gauge(
    "sentinel_llm_cooldown_seconds",
    "Seconds left in a model's quota cooldown",
    ["provider", "model"],
    multiprocess_mode="max",
)
RAG_CACHE = Counter("sentinel_rag_cache_total", "RAG answer cache lookups", ["kind", "result"])

DB_POOL_IN_USE = Gauge(
    "sentinel_db_pool_in_use", "Database connections checked out", multiprocess_mode="livesum"
)
REDIS_UP = Gauge("sentinel_redis_up", "1 when Redis answers, 0 otherwise", multiprocess_mode="max")

# --- operations (console, dashboards and alert rules in deploy/) ------------------------------

ALERT_DELIVERIES = Counter(
    "sentinel_alert_deliveries_total",
    "Alert delivery attempts by channel and outcome (sent, retry, failed, undeliverable)",
    ["channel", "outcome"],
)
ALERT_PENDING = Gauge(
    "sentinel_alert_deliveries_pending",
    "Alert deliveries waiting to be sent",
    ["channel"],
    multiprocess_mode="max",
)
ALERT_OLDEST_PENDING = Gauge(
    "sentinel_alert_oldest_pending_seconds",
    "Age of the oldest alert delivery still waiting (0 when none)",
    ["channel"],
    multiprocess_mode="max",
)

SOURCES = Gauge(
    "sentinel_sources",
    "Known sources by state (online/offline)",
    ["state"],
    multiprocess_mode="max",
)
SOURCE_LAST_SEEN = Gauge(
    "sentinel_source_last_seen_timestamp_seconds",
    "When each source was last heard from (Unix time)",
    ["source_id"],
    multiprocess_mode="max",
)

LLM_TOKENS = Counter(
    "sentinel_llm_tokens_total",
    "LLM tokens by direction (in/out)",
    ["provider", "model", "direction"],
)
LLM_COST = Counter(
    "sentinel_llm_cost_usd_total",
    "Estimated LLM cost in US dollars from LLM_PRICES",
    ["provider", "model"],
)
LLM_FALLBACKS = Counter(
    "sentinel_llm_fallbacks_total",
    "Times a model failed and the chain moved on",
    ["provider", "model"],
)
LLM_MONTHLY_BUDGET = Gauge(
    "sentinel_llm_monthly_budget_usd",
    "LLM_MONTHLY_BUDGET_USD (0 = no budget), for the cost alert rule",
    multiprocess_mode="max",
)
RAG_LOCAL_ANSWERS = Counter(
    "sentinel_rag_local_answers_total", "Answers extracted locally because no model could answer"
)

RETENTION_DELETED = Counter(
    "sentinel_retention_deleted_total", "Rows and records removed by retention", ["kind"]
)
RETENTION_LAST_RUN = Gauge(
    "sentinel_retention_last_run_timestamp_seconds",
    "When retention last finished (Unix time)",
    multiprocess_mode="max",
)

JOBS = Counter("sentinel_jobs_total", "Background job outcomes", ["job", "outcome"])
JOBS_FAILED_ALERTS = Counter(
    "sentinel_job_failed_alerts_total", "Jobs that failed for good and raised an alert", ["job"]
)

# --- learning from operators --------------------------------------------------------------

MODEL_ACTIVE = Gauge(
    "sentinel_model_active_info",
    "1 for the behaviour-model version this process serves (label model_version)",
    ["model_version"],
    multiprocess_mode="liveall",
)
MODEL_SWAPS = Counter(
    "sentinel_model_swaps_total", "Times a process switched to another behaviour-model version"
)
FEEDBACK_EPISODES = Gauge(
    "sentinel_feedback_episodes",
    "Labelled episodes per source: labelled, false_alarm, miss",
    ["source_id", "outcome"],
    multiprocess_mode="max",
)
FALSE_ALARM_RATE = Gauge(
    "sentinel_false_alarm_rate",
    "False alarms over flagged labelled episodes, per source",
    ["source_id"],
    multiprocess_mode="max",
)
