"""Dependency-injector container: settings → infrastructure → repositories/clients → services.

Infrastructure (database, Redis, and in later layers the model and background loops) are
singletons whose `start()`/`stop()` the app lifespan calls; services are factories.
Tests swap a provider with ``container.<provider>.override(...)``.
"""

from __future__ import annotations

from dependency_injector import containers, providers

from app.core.database import Database
from app.core.lock import LockService
from app.core.prometheus import GaugeSampler
from app.core.rate_limit import RateLimiter
from app.core.redis import RedisManager
from app.core.security import PasswordService, TokenService
from app.core.settings import Settings
from app.ml.batcher import InferenceBatcher
from app.services.behavior import BehaviorService
from app.services.health import HealthService
from app.services.users import UserService


class Container(containers.DeclarativeContainer):
    """Wires every part of Sentinel."""

    settings = providers.Singleton(Settings)

    database = providers.Singleton(Database, settings=settings.provided.db)
    redis = providers.Singleton(RedisManager, settings=settings.provided.redis)
    locks = providers.Singleton(LockService, redis=redis)

    rate_limiter = providers.Singleton(
        RateLimiter, settings=settings.provided.rate_limit, redis=redis
    )

    passwords = providers.Singleton(PasswordService)
    tokens = providers.Singleton(TokenService, settings=settings.provided.security)

    user_service = providers.Factory(
        UserService, database=database, passwords=passwords, tokens=tokens
    )

    # The behaviour model: loaded once at start-up, micro-batched forward passes in one thread.
    inference_batcher = providers.Singleton(InferenceBatcher, settings=settings.provided.model)
    behavior_service = providers.Factory(
        BehaviorService, batcher=inference_batcher, settings=settings.provided.model
    )

    # Components with async start()/stop(), started in this order by the lifespan and
    # stopped in reverse (the database is disposed after all of them).
    metrics_sampler = providers.Singleton(GaugeSampler, database=database, redis=redis)

    lifecycle = providers.List(redis, metrics_sampler, inference_batcher)

    # Extra components reported by /health, keyed by name; each is `async () -> dict`.
    health_checks = providers.Dict(model=inference_batcher.provided.health)
    health_service = providers.Factory(
        HealthService,
        settings=settings,
        database=database,
        redis=redis,
        checks=health_checks,
    )
