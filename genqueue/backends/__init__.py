"""Backend selection from URLs: the only module that names backends.

Each branch imports its backend lazily, so a driver is needed only when its scheme is used.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from genqueue.contracts import Broker, Store
from genqueue.errors import BackendUnavailableError, ConfigError
from genqueue.redact import redact_url
from genqueue.settings import Settings

log = logging.getLogger(__name__)
B = TypeVar("B")


def _scheme(url: str) -> str:
    scheme = urlsplit(url).scheme
    if not scheme:
        raise ConfigError(
            f"backend URL {redact_url(url)!r} has no scheme (e.g. sqlite:///data/genqueue.db)"
        )
    return scheme


async def open_store(url: str, settings: Settings) -> Store:
    """Connect the store named by ``url`` (``GENQUEUE_STORE``)."""
    match _scheme(url):
        case "sqlite":
            from genqueue.backends.sqlite.store import SqliteStore

            return await SqliteStore.connect(url)
        case "redis" | "rediss":
            from genqueue.backends.redis.store import RedisStore

            return await RedisStore.connect(url)
        case "postgresql" | "postgres":
            from genqueue.backends.postgres.store import PostgresStore

            return await PostgresStore.connect(url)
        case scheme:
            raise ConfigError(
                f"unknown store scheme {scheme!r} in {redact_url(url)!r};"
                " supported: sqlite, redis, postgresql"
            )


async def open_broker(url: str, settings: Settings) -> Broker:
    """Connect the broker named by ``url`` (``GENQUEUE_BROKER``)."""
    match _scheme(url):
        case "sqlite":
            from genqueue.backends.sqlite.broker import SqliteBroker

            return await SqliteBroker.connect(url, visibility_s=settings.lease_s)
        case "redis" | "rediss":
            from genqueue.backends.redis.broker import RedisBroker

            return await RedisBroker.connect(url, visibility_s=settings.lease_s)
        case "postgresql" | "postgres":
            from genqueue.backends.postgres.broker import PostgresBroker

            return await PostgresBroker.connect(url, visibility_s=settings.lease_s)
        case "amqp" | "amqps":
            from genqueue.backends.amqp import AmqpBroker

            return await AmqpBroker.connect(url, settings.amqp)
        case scheme:
            raise ConfigError(
                f"unknown broker scheme {scheme!r} in {redact_url(url)!r};"
                " supported: sqlite, redis, postgresql, amqp"
            )


async def open_patiently(
    opener: Callable[[str, Settings], Awaitable[B]], url: str, settings: Settings
) -> B:
    """Open a backend, waiting with growing pauses (up to 10 s) while its server is down, so
    a process started before its broker or database comes up by itself. A ``ConfigError``
    (wrong URL, mismatched queue) is raised at once: waiting would not fix it."""
    pause = 0.5
    while True:
        try:
            return await opener(url, settings)
        except BackendUnavailableError as exc:
            log.warning("%s; trying again in %.1f s", exc, pause)
            await asyncio.sleep(pause)
            pause = min(10.0, pause * 2)
