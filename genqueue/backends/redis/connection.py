"""Connecting to Redis from a genqueue URL, and mapping its failures to genqueue errors."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from genqueue.errors import BackendUnavailableError
from genqueue.redact import redact_text

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_PREFIX = "genqueue"
# A dead or stalled server becomes an error (503 in the API) within this, not a hang.
SOCKET_TIMEOUT_S = 5.0


def split_url(url: str) -> tuple[str, str]:
    """``redis://h:6379/0?prefix=x`` -> (the URL redis-py understands, the key prefix)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    prefix = query.pop("prefix", DEFAULT_PREFIX)
    return urlunsplit(parts._replace(query=urlencode(query))), prefix


def connect(url: str) -> tuple[Redis, str]:
    plain, prefix = split_url(url)
    redis = Redis.from_url(
        plain,
        decode_responses=True,
        health_check_interval=10,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        # Maintenance notifications (a Redis Cloud feature) make redis-py 8 skip its check of
        # pooled connections, so after a Redis restart every idle connection would fail its
        # next command once ("Connection closed by server") instead of reconnecting.
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    return redis, prefix


# What redis-py raises when the server cannot be reached (redis' TimeoutError is not the
# builtin one, and neither is a ConnectionError of Python's).
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


@contextlib.contextmanager
def reaching() -> Iterator[None]:
    """Turn redis-py's "cannot reach the server" into ``BackendUnavailableError``."""
    try:
        yield
    except UNREACHABLE as exc:
        raise BackendUnavailableError(redact_text(f"Redis: {exc}")) from exc


def reached(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """:func:`reaching` around a whole coroutine method (one that sends plain commands)."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        with reaching():
            return await fn(*args, **kwargs)

    return call
