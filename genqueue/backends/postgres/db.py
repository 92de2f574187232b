"""Connecting to PostgreSQL from a genqueue URL, and surviving the connections being dropped.

``Database`` owns one asyncpg pool whose connections all use the URL's schema (search_path)
and carry ``application_name = genqueue:<schema>``, so an operator can see (or end) them.
Connection failures become ``BackendUnavailableError`` (the API answers 503); a call that
failed because its connection died is tried again on a fresh one first, since asyncpg only
notices a dead idle connection when it is used.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg

from genqueue.errors import BackendUnavailableError, ConfigError
from genqueue.redact import redact_text, redact_url

T = TypeVar("T")
Conn = Any  # asyncpg.Connection (asyncpg has no type stubs)

DEFAULT_SCHEMA = "genqueue"
CONNECT_TIMEOUT_S = 5.0
RETRY_DELAYS_S = (0.05, 0.25, 0.5)  # after a dropped connection: fresh ones, a bit later
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")  # leaves room in channel names

# Failures of the connection or the server, as opposed to errors in a statement.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now, ...
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    asyncpg.exceptions.InternalClientError,
    OSError,  # refused, reset, timed out
)
NOT_RETRIED: tuple[type[BaseException], ...] = (asyncpg.exceptions.QueryCanceledError,)


@dataclass(frozen=True)
class Target:
    """Where a URL points: the DSN asyncpg understands, and the schema to work in."""

    dsn: str
    schema: str

    @property
    def application_name(self) -> str:
        return f"genqueue:{self.schema}"

    def channel(self, table: str) -> str:
        """The NOTIFY channel of a table (the trigger functions build the same name)."""
        return f"{self.schema}.{table}"


def parse_url(url: str) -> Target:
    """``postgresql://u@h:5432/db?schema=x`` -> the DSN without genqueue's query, and x."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", DEFAULT_SCHEMA)
    if not _SCHEMA_NAME.match(schema):
        raise ConfigError(
            f"bad PostgreSQL schema {schema!r} in {redact_url(url)!r}:"
            " letters, digits and _, at most 48"
        )
    rest = "&".join(f"{k}={v}" for k, v in query.items())
    return Target(urlunsplit(parts._replace(query=rest)), schema)


async def _init(conn: Conn) -> None:
    # jsonb in and out as Python values (payloads, results, event data).
    await conn.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
    )


def _settings(target: Target) -> dict[str, str]:
    return {"search_path": f'"{target.schema}"', "application_name": target.application_name}


async def connect_one(target: Target) -> Conn:
    """A connection of its own (LISTEN, migrations), outside any pool."""
    try:
        conn = await asyncpg.connect(
            target.dsn, server_settings=_settings(target), timeout=CONNECT_TIMEOUT_S
        )
    except UNAVAILABLE as exc:
        raise unavailable(exc) from exc
    try:
        await _init(conn)
    except BaseException as exc:
        conn.terminate()
        if isinstance(exc, UNAVAILABLE):
            raise unavailable(exc) from exc
        raise
    return conn


def unavailable(exc: BaseException) -> BackendUnavailableError:
    message = f"PostgreSQL: {type(exc).__name__}: {exc}".rstrip(": ")
    return BackendUnavailableError(redact_text(message))


class Database:
    """One asyncpg pool on one schema; ``run`` is the only way statements reach it."""

    def __init__(self, target: Target, pool: Any) -> None:
        self.target = target
        self._pool = pool

    @classmethod
    async def open(cls, url: str, max_size: int) -> Database:
        from genqueue.backends.postgres.migrate import migrate

        target = parse_url(url)
        conn = await connect_one(target)
        try:
            await migrate(conn, target.schema)
        finally:
            await conn.close()
        try:
            pool = await asyncpg.create_pool(
                target.dsn,
                min_size=1,
                max_size=max_size,
                server_settings=_settings(target),
                init=_init,
                timeout=CONNECT_TIMEOUT_S,
            )
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc
        return cls(target, pool)

    async def run(self, fn: Callable[[Conn], Awaitable[T]], *, retry: bool = True) -> T:
        """``fn(connection)`` on a pooled connection. With ``retry`` (for calls that are safe
        to repeat), a call whose connection died is tried again on a fresh one."""
        delays = RETRY_DELAYS_S if retry else ()
        for delay in (*delays, None):
            try:
                async with self._pool.acquire(timeout=CONNECT_TIMEOUT_S) as conn:
                    return await fn(conn)
            except NOT_RETRIED as exc:
                raise unavailable(exc) from exc
            except UNAVAILABLE as exc:
                if delay is None:
                    raise unavailable(exc) from exc
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def fetch(self, sql: str, *args: Any, retry: bool = True) -> list[Any]:
        return await self.run(lambda conn: conn.fetch(sql, *args), retry=retry)

    async def fetchrow(self, sql: str, *args: Any, retry: bool = True) -> Any:
        return await self.run(lambda conn: conn.fetchrow(sql, *args), retry=retry)

    async def fetchval(self, sql: str, *args: Any, retry: bool = True) -> Any:
        return await self.run(lambda conn: conn.fetchval(sql, *args), retry=retry)

    async def execute(self, sql: str, *args: Any, retry: bool = True) -> None:
        await self.run(lambda conn: conn.execute(sql, *args), retry=retry)

    async def aclose(self) -> None:
        with suppress(*UNAVAILABLE):
            await asyncio.wait_for(self._pool.close(), CONNECT_TIMEOUT_S)
        self._pool.terminate()
