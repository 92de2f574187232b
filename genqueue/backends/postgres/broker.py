"""PostgresBroker: the Broker contract on the ``deliveries`` table (``migrations/002``).

A fetch takes due rows with ``FOR UPDATE SKIP LOCKED`` (so consumers never wait on each other
or get the same row) and stamps them with a fresh receipt and a visibility deadline, in one
statement. While a consumer lives it keeps pushing the deadline of what it holds forward; a
consumer that dies stops, and its rows are taken again once the deadline passes. Publishing
NOTIFYs the consumers' listener, so idle consumers wake at once and poll only slowly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Self

from genqueue.backends.group import GroupCall
from genqueue.backends.postgres.db import Database
from genqueue.backends.postgres.listen import Listener
from genqueue.backends.pull import FALLBACK_POLL_S, Bell, Chime, Fetched, PullDelivery, Puller
from genqueue.contracts import BrokerStatus, Message, QueueStatus
from genqueue.errors import BackendUnavailableError

log = logging.getLogger(__name__)

POOL_SIZE = 4
STATUS_TIMEOUT_S = 3.0

PUBLISH = """
INSERT INTO deliveries (queue, task_id, priority, available_at)
SELECT queue, task_id, priority, now() + make_interval(secs => delay_s)
FROM unnest($1::text[], $2::text[], $3::integer[], $4::float8[])
    AS m(queue, task_id, priority, delay_s)
"""
# Up to $2 due rows, best first across the queues in $1 (each queue read through its index),
# and, when there are none, the seconds until the next delayed one comes due.
FETCH = """
WITH picked AS (
    SELECT c.id FROM unnest($1::text[]) AS q(name) CROSS JOIN LATERAL (
        SELECT id, priority FROM deliveries
        WHERE queue = q.name AND available_at <= now()
            AND (locked_until IS NULL OR locked_until < now())
        ORDER BY priority DESC, id LIMIT $2 FOR UPDATE SKIP LOCKED
    ) c
    ORDER BY c.priority DESC, c.id LIMIT $2
), taken AS (
    UPDATE deliveries d SET receipt = $3, locked_until = now() + make_interval(secs => $4)
    FROM picked WHERE d.id = picked.id
    RETURNING d.id, d.queue, d.task_id, d.priority
)
SELECT id, queue, task_id, priority, NULL::float8 AS due_in FROM taken
UNION ALL
SELECT NULL, NULL, NULL, NULL, extract(epoch FROM min(available_at) - now())::float8
FROM deliveries
WHERE queue = ANY($1::text[]) AND available_at > now() AND NOT EXISTS (SELECT 1 FROM taken)
"""
ACK = """
DELETE FROM deliveries d USING unnest($1::bigint[], $2::text[]) AS a(id, receipt)
WHERE d.id = a.id AND d.receipt = a.receipt
"""
NACK = """
WITH u AS (
    UPDATE deliveries SET receipt = NULL, locked_until = NULL,
        available_at = now() + make_interval(secs => $3)
    WHERE id = $1 AND receipt = $2 RETURNING 1
)
SELECT pg_notify($4, '') FROM u
"""
TOUCH = """
UPDATE deliveries d SET locked_until = now() + make_interval(secs => $3)
FROM unnest($1::bigint[], $2::text[]) AS a(id, receipt)
WHERE d.id = a.id AND d.receipt = a.receipt
"""
_VISIBLE = "(locked_until IS NULL OR locked_until < now())"
DEPTH = f"SELECT count(*) FROM deliveries WHERE queue = $1 AND {_VISIBLE}"
STATUS = f"""
SELECT q.name,
    (SELECT count(*) FROM deliveries WHERE queue = q.name AND {_VISIBLE}) AS ready,
    (SELECT count(*) FROM deliveries WHERE queue = q.name AND locked_until >= now()) AS unacked
FROM unnest($1::text[]) AS q(name)
"""


class PostgresBroker:
    """The Broker contract on PostgreSQL. See ``genqueue.contracts.Broker``."""

    def __init__(self, db: Database, visibility_s: float = 10.0) -> None:
        self._db = db
        self.visibility_s = visibility_s
        self._chime = Chime()
        self._listener = Listener(db.target, "deliveries", self._chime.ring)
        self._listening: asyncio.Task[None] | None = None
        self._acks = GroupCall(self._send_acks)
        self._puller = Puller(self, visibility_s)

    @classmethod
    async def connect(cls, url: str, visibility_s: float = 10.0) -> Self:
        return cls(await Database.open(url, POOL_SIZE), visibility_s)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._puller.aclose()
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
        await self._listener.close()
        await self._db.aclose()

    async def ping(self) -> None:
        await self._db.fetchval("SELECT 1")

    async def publish(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        # Retried after a dropped connection: a duplicate message is harmless (its claim fails).
        await self._db.execute(
            PUBLISH,
            [m.queue for m in messages],
            [m.task_id for m in messages],
            [m.priority for m in messages],
            [float(m.delay_s) for m in messages],
        )

    async def depth(self, queue: str) -> int:
        return int(await self._db.fetchval(DEPTH, queue))

    async def status(self, queues: Sequence[str]) -> BrokerStatus:
        async def run(conn: Any) -> tuple[str, list[Any]]:
            version = await conn.fetchval("SELECT current_setting('server_version')")
            return str(version), await conn.fetch(STATUS, list(queues))

        try:
            async with asyncio.timeout(STATUS_TIMEOUT_S):
                version, rows = await self._db.run(run, retry=False)
        except (BackendUnavailableError, TimeoutError) as exc:
            return BrokerStatus("postgres", False, str(exc) or "PostgreSQL: no answer", [])
        return BrokerStatus(
            "postgres",
            True,
            f"PostgreSQL {version.split()[0]}",
            [QueueStatus(r["name"], r["ready"], r["unacked"]) for r in rows],
        )

    def consume(self, queues: Sequence[str], prefetch: int) -> AsyncGenerator[PullDelivery, None]:
        return self._puller.deliveries(queues, prefetch)

    def bell(self) -> contextlib.AbstractAsyncContextManager[Bell]:
        if self._listening is None:
            self._listening = asyncio.create_task(self._listener.keep_listening())
        return self._chime.bell()

    async def fetch(
        self, queues: Sequence[str], n: int, receipt: str, visibility_s: float
    ) -> tuple[list[Fetched], float]:
        rows = await self._db.fetch(FETCH, list(queues), n, receipt, float(visibility_s))
        fetched = [
            Fetched(r["id"], r["task_id"], r["queue"], r["priority"])
            for r in rows
            if r["id"] is not None
        ]
        due = [r["due_in"] for r in rows if r["id"] is None and r["due_in"] is not None]
        return fetched, max(0.0, due[0]) if due else FALLBACK_POLL_S

    async def settle(self, delivery: PullDelivery, delay_s: float | None) -> None:
        if delay_s is None:  # acks made while one batch is on the wire go in the next
            await self._acks(delivery.key, delivery.receipt)
            return
        await self._db.fetch(
            NACK,
            delivery.key,
            delivery.receipt,
            float(delay_s),
            self._db.target.channel("deliveries"),
        )

    async def _send_acks(self, calls: list[Sequence[Any]]) -> list[Any]:
        await self._db.execute(ACK, [row_id for row_id, _ in calls], [r for _, r in calls])
        return [None] * len(calls)

    async def touch(self, held: Sequence[PullDelivery], visibility_s: float) -> None:
        await self._db.execute(
            TOUCH, [d.key for d in held], [d.receipt for d in held], float(visibility_s)
        )
