"""Dependency-injector container: settings → infrastructure → repositories/clients → services.

Infrastructure (database, Redis, and in later layers the model and background loops) are
singletons whose `start()`/`stop()` the app lifespan calls; services are factories.
Tests swap a provider with ``container.<provider>.override(...)``.
"""

from __future__ import annotations

from dependency_injector import containers, providers

from app.clients.google import GoogleTokenVerifier
from app.clients.job_queue import JobQueue
from app.clients.kakao import KakaoClient
from app.clients.llm.factory import build_llm_clients
from app.clients.mailer import AccountMailer
from app.clients.notifiers import NotifierRegistry
from app.clients.notifiers.email import EmailNotifier
from app.clients.notifiers.http import NotifierHttp
from app.clients.notifiers.slack import SlackNotifier
from app.clients.notifiers.webhook import WebhookNotifier
from app.clients.vector_store import VectorStore
from app.core.crypto import SecretBox
from app.core.database import Database
from app.core.lock import LockService
from app.core.prometheus import GaugeSampler
from app.core.rate_limit import RateLimiter
from app.core.redis import RedisManager
from app.core.security import PasswordService, TokenService
from app.core.settings import Settings
from app.core.tokenizer import Tokenizer
from app.ml.batcher import InferenceBatcher
from app.ml.embedding import Embedder
from app.repositories.events import RecentEventCache
from app.repositories.llm import CooldownStore
from app.repositories.rag_cache import AnswerCache, IndexVersionStore
from app.services.ack_links import AckLinks
from app.services.agents import AgentCredentialCache, AgentService, SourceRegistry
from app.services.alert_digest import DigestKeeper
from app.services.alert_routing import RouteService
from app.services.alert_text import AlertRenderer
from app.services.alerts import AlertDispatcher, AlertService
from app.services.answer_feedback import FeedbackService
from app.services.authn import AccountStateCache, Authenticator
from app.services.behavior import BehaviorService
from app.services.episode_feedback import EpisodeFeedbackService
from app.services.episodes import EpisodeDecider, EpisodeTracker
from app.services.event_knowledge import EventKnowledgeIndexer
from app.services.event_log import EventLog
from app.services.event_partitions import EventPartitionService
from app.services.events import EventService
from app.services.health import HealthService
from app.services.incidents import IncidentKeeper, IncidentService
from app.services.job_functions import JobFunctionRegistry
from app.services.jobs import JobService
from app.services.kakao import CredentialStore, KakaoNotifier
from app.services.knowledge import KnowledgeService
from app.services.llm_router import LLMRouter
from app.services.maintenance import MaintenanceKeeper
from app.services.model_registry import ModelRegistry
from app.services.ops_metrics import OpsMetricsSampler
from app.services.rag import RagService
from app.services.rag_text import PromptBuilder
from app.services.retention import RetentionScheduler, RetentionService
from app.services.retrieval import KnowledgeIndex
from app.services.silences import SilenceService
from app.services.source_monitor import SourceMonitor
from app.services.stream import EventStream
from app.services.usage import UsageRecorder, UsageService
from app.services.users import UserService
from app.services.warmup import AssistantWarmup


class Container(containers.DeclarativeContainer):
    """Wires every part of Sentinel."""

    settings = providers.Singleton(Settings)

    database = providers.Singleton(Database, settings=settings.provided.db)
    redis = providers.Singleton(RedisManager, settings=settings.provided.redis)
    locks = providers.Singleton(LockService, redis=redis)

    rate_limiter = providers.Singleton(
        RateLimiter,
        settings=settings.provided.rate_limit,
        redis=redis,
        security=settings.provided.security,
    )

    passwords = providers.Singleton(PasswordService)
    tokens = providers.Singleton(TokenService, settings=settings.provided.security)

    account_states = providers.Singleton(
        AccountStateCache,
        database=database,
        redis=redis,
        ttl_secs=settings.provided.security.auth_state_cache_secs,
    )
    # Per-agent credentials (sources bound to agents), trusted for the same time as accounts.
    agent_credentials = providers.Singleton(
        AgentCredentialCache,
        database=database,
        ttl_secs=settings.provided.security.auth_state_cache_secs,
    )
    agent_service = providers.Factory(
        AgentService, database=database, credentials=agent_credentials
    )
    source_registry = providers.Factory(
        SourceRegistry,
        database=database,
        offline_after_secs=settings.provided.events.source_offline_after_secs,
    )
    authenticator = providers.Singleton(
        Authenticator, tokens=tokens, accounts=account_states, agents=agent_credentials
    )
    google_verifier = providers.Singleton(GoogleTokenVerifier, settings=settings.provided.security)
    account_mailer = providers.Singleton(AccountMailer, settings=settings.provided.alerts)
    # One per process: it holds the reset-mail tasks and their lock.
    user_service = providers.Singleton(
        UserService,
        database=database,
        passwords=passwords,
        tokens=tokens,
        accounts=account_states,
        limiter=rate_limiter,
        settings=settings,
        google=google_verifier,
        mailer=account_mailer,
    )

    # Knowledge base and RAG.
    embedder = providers.Singleton(
        Embedder, settings=settings.provided.llm, device=settings.provided.model.device
    )
    vector_store = providers.Singleton(
        VectorStore, settings=settings.provided.llm, embedder=embedder
    )
    index_version = providers.Singleton(IndexVersionStore, redis=redis)
    tokenizer = providers.Singleton(Tokenizer)
    # This process's BM25 index of the knowledge chunks, following the database's change log.
    knowledge_index = providers.Singleton(
        KnowledgeIndex,
        database=database,
        vector_store=vector_store,
        tokenizer=tokenizer,
        settings=settings.provided.llm,
    )
    answer_cache = providers.Singleton(AnswerCache, redis=redis)
    # Closed episodes summarised into `<CHROMA_COLLECTION>_events` in the background.
    event_knowledge = providers.Singleton(
        EventKnowledgeIndexer,
        database=database,
        vector_store=vector_store,
        index_version=index_version,
        timezone=settings.provided.alerts.timezone,
    )
    knowledge_service = providers.Factory(
        KnowledgeService,
        database=database,
        vector_store=vector_store,
        index_version=index_version,
        locks=locks,
        settings=settings.provided.llm,
        index=knowledge_index,
        events=event_knowledge,
    )
    llm_clients = providers.Singleton(build_llm_clients, settings=settings.provided.llm)
    cooldowns = providers.Singleton(CooldownStore, redis=redis)
    # Usage counters: Redis totals, the per-day ledger (admin stats) and Prometheus counters.
    llm_stats = providers.Singleton(
        UsageRecorder, redis=redis, database=database, settings=settings.provided.llm
    )
    usage_service = providers.Factory(UsageService, database=database, recorder=llm_stats)
    llm_router = providers.Singleton(
        LLMRouter,
        settings=settings.provided.llm,
        clients=llm_clients,
        cooldowns=cooldowns,
        stats=llm_stats,
    )
    prompts = providers.Singleton(PromptBuilder)
    rag_service = providers.Factory(
        RagService,
        settings=settings.provided.llm,
        database=database,
        embedder=embedder,
        vector_store=vector_store,
        router=llm_router,
        answer_cache=answer_cache,
        index_version=index_version,
        stats=llm_stats,
        prompts=prompts,
        index=knowledge_index,
        events=event_knowledge,
    )
    feedback_service = providers.Factory(FeedbackService, database=database)

    # The behaviour model: loaded once at start-up, micro-batched forward passes in one thread.
    inference_batcher = providers.Singleton(InferenceBatcher, settings=settings.provided.model)
    behavior_service = providers.Factory(
        BehaviorService, batcher=inference_batcher, settings=settings.provided.model
    )
    # Learning from operators: labels on episodes, versions in the database, the hot swap.
    episode_feedback = providers.Singleton(
        EpisodeFeedbackService, database=database, batcher=inference_batcher
    )
    model_registry = providers.Singleton(
        ModelRegistry,
        database=database,
        batcher=inference_batcher,
        settings=settings.provided.model,
        feedback_metrics=episode_feedback.provided.export_metrics,
    )

    # --- events and alerts -----------------------------------------------------------------
    secrets = providers.Singleton(SecretBox, settings=settings.provided.security)
    # The behaviour analyzer for episode decisions (the `BehaviorAnalyzer` protocol).
    behavior_analyzer = behavior_service
    episode_decider = providers.Singleton(
        EpisodeDecider,
        analyzer=behavior_analyzer,
        fallback_threshold=settings.provided.model.anomaly_threshold,
    )
    episode_tracker = providers.Singleton(
        EpisodeTracker,
        decider=episode_decider,
        max_sequence_frames=settings.provided.model.max_sequence_length,
        max_sequence_bytes=settings.provided.events.episode_sequence_max_bytes,
    )
    event_log = providers.Singleton(EventLog, settings=settings.provided.events)
    event_stream = providers.Singleton(
        EventStream,
        redis=redis,
        max_subscribers=settings.provided.security.stream_max_subscribers,
        max_per_principal=settings.provided.security.stream_max_per_principal,
        viewer_share=settings.provided.security.stream_viewer_share,
        admin_reserved=settings.provided.security.stream_admin_reserved,
    )
    recent_events = providers.Singleton(
        RecentEventCache, redis=redis, max_items=settings.provided.events.recent_max
    )
    kakao_client = providers.Singleton(KakaoClient, settings=settings.provided.alerts)
    kakao_credentials = providers.Singleton(
        CredentialStore, database=database, secrets=secrets, settings=settings.provided.alerts
    )
    kakao_notifier = providers.Singleton(
        KakaoNotifier,
        client=kakao_client,
        store=kakao_credentials,
        locks=locks,
        settings=settings.provided.alerts,
    )
    # Alert channels: one `Notifier` each, one registry the dispatcher reads.
    notifier_http = providers.Singleton(NotifierHttp, settings=settings.provided.alerts)
    slack_notifier = providers.Singleton(
        SlackNotifier, http=notifier_http, settings=settings.provided.alerts
    )
    webhook_notifier = providers.Singleton(
        WebhookNotifier, http=notifier_http, settings=settings.provided.alerts
    )
    email_notifier = providers.Singleton(EmailNotifier, settings=settings.provided.alerts)
    notifiers = providers.Singleton(
        NotifierRegistry,
        notifiers=providers.List(kakao_notifier, slack_notifier, webhook_notifier, email_notifier),
    )
    alert_renderer = providers.Singleton(AlertRenderer, settings=settings.provided.alerts)
    alert_routes = providers.Singleton(
        RouteService, database=database, settings=settings.provided.alerts
    )
    silence_service = providers.Singleton(SilenceService, database=database)
    alert_service = providers.Singleton(
        AlertService,
        database=database,
        settings=settings.provided.alerts,
        renderer=alert_renderer,
        routes=alert_routes,
    )
    source_monitor = providers.Singleton(
        SourceMonitor,
        database=database,
        alerts=alert_service,
        locks=locks,
        events=settings.provided.events,
        settings=settings.provided.alerts,
    )
    incident_service = providers.Singleton(IncidentService, database=database)
    incident_keeper = providers.Singleton(
        IncidentKeeper, database=database, settings=settings.provided.alerts
    )
    ack_links = providers.Singleton(
        AckLinks, settings=settings.provided.alerts, security=settings.provided.security
    )
    maintenance_keeper = providers.Singleton(
        MaintenanceKeeper,
        database=database,
        settings=settings.provided.alerts,
        alerts=alert_service,
    )
    digest_keeper = providers.Singleton(
        DigestKeeper, database=database, settings=settings.provided.alerts, alerts=alert_service
    )
    # Periodic alert jobs run by the dispatcher's housekeeping loop: one line each.
    alert_keepers = providers.List(incident_keeper, maintenance_keeper, digest_keeper)
    alert_dispatcher = providers.Singleton(
        AlertDispatcher,
        database=database,
        notifiers=notifiers,
        renderer=alert_renderer,
        alerts=alert_service,
        stream=event_stream,
        settings=settings.provided.alerts,
        monitor=source_monitor,
        event_index=event_knowledge,
        keepers=alert_keepers,
        ack_links=ack_links,
    )
    event_service = providers.Singleton(
        EventService,
        database=database,
        settings=settings.provided.events,
        max_sequence_length=settings.provided.model.max_sequence_length,
        tracker=episode_tracker,
        alerts=alert_service,
        dispatcher=alert_dispatcher,
        recent=recent_events,
        event_log=event_log,
        stream=event_stream,
        event_index=event_knowledge,
    )

    # Daily partitions of `events` on PostgreSQL: made ahead by every web process, dropped by
    # retention.
    event_partitions = providers.Singleton(
        EventPartitionService, database=database, settings=settings.provided.events
    )

    # Retention: one entry point (`run(dry_run)`), run as a job (`retention_scheduler` below).
    retention_service = providers.Factory(
        RetentionService,
        database=database,
        settings=settings.provided.retention,
        locks=locks,
        event_log=event_log,
        vector_store=vector_store,
        partitions=event_partitions,
    )

    # --- background jobs (taskiq: Redis stream + `sentinel worker`, or in-process) ------------
    job_queue = providers.Singleton(
        JobQueue,
        settings=settings.provided.jobs,
        redis_settings=settings.provided.redis,
        redis=redis,
    )
    job_functions = providers.Singleton(
        JobFunctionRegistry,
        knowledge=knowledge_service.provider,
        event_knowledge=event_knowledge,
        model_settings=settings.provided.model,
        import_max_files=settings.provided.jobs.import_max_files,
        import_max_unpacked_bytes=settings.provided.jobs.import_max_unpacked_bytes,
        retention=retention_service.provider,
        models=model_registry,
    )
    job_service = providers.Singleton(
        JobService,
        database=database,
        queue=job_queue,
        functions=job_functions,
        alerts=alert_service,
        settings=settings.provided.jobs,
    )

    # Every web process wakes at each interval's boundary; one queues that interval's job.
    retention_scheduler = providers.Singleton(
        RetentionScheduler,
        service=retention_service,
        settings=settings.provided.retention,
        jobs=job_service,
    )

    # Components with async start()/stop(), started in this order by the lifespan and
    # stopped in reverse (the database is disposed after all of them).
    metrics_sampler = providers.Singleton(GaugeSampler, database=database, redis=redis)
    ops_metrics = providers.Singleton(
        OpsMetricsSampler,
        events=event_service,
        dispatcher=alert_dispatcher,
        router=llm_router,
        max_source_series=settings.provided.metrics_max_source_series,
    )

    # Loads the embedder, Kiwi and the indexes before /health/ready says ready.
    assistant_warmup = providers.Singleton(AssistantWarmup, rag=rag_service.provider)

    lifecycle = providers.List(
        redis,
        event_partitions,
        metrics_sampler,
        inference_batcher,
        model_registry,
        event_log,
        event_stream,
        kakao_client,
        notifier_http,
        alert_dispatcher,
        embedder,
        vector_store,
        knowledge_index,
        event_knowledge,
        job_service,
        llm_router,
        llm_stats,
        ops_metrics,
        retention_scheduler,
        assistant_warmup,
    )

    # Extra components reported by /health, keyed by name; each is `async () -> dict`.
    health_checks = providers.Dict(
        model=inference_batcher.provided.health,
        alerts=alert_dispatcher.provided.health,
        llm=llm_router.provided.status,
        vector_store=knowledge_service.provided.vector_health,
    )
    health_service = providers.Factory(
        HealthService,
        settings=settings,
        database=database,
        redis=redis,
        checks=health_checks,
        warmup=assistant_warmup,
    )
