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
import secrets
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from genqueue.backends.group import GroupCall
from genqueue.backends.postgres.db import Database
from genqueue.backends.postgres.listen import Listener, sleep_until
from genqueue.contracts import BrokerStatus, Message, QueueStatus
from genqueue.errors import BackendUnavailableError

log = logging.getLogger(__name__)

POOL_SIZE = 4
FALLBACK_POLL_S = 0.5  # an idle consumer looks anyway this often (NOTIFY is a hint)
OUTAGE_PAUSE_S = 1.0  # a consumer that cannot reach the server tries again this often
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


@dataclass
class PostgresDelivery:
    """One fetched row; ``ack``/``nack`` are fenced by the fetch's receipt."""

    broker: PostgresBroker
    row_id: int
    receipt: str
    task_id: str
    queue: str
    _done: bool = field(default=False, repr=False)

    async def ack(self) -> None:
        if not self._done:
            self._done = True
            await self.broker._ack(self)

    async def nack(self, delay_s: float = 0.0) -> None:
        if not self._done:
            self._done = True
            await self.broker._nack(self, delay_s)


class PostgresBroker:
    """The Broker contract on PostgreSQL. See ``genqueue.contracts.Broker``."""

    def __init__(self, db: Database, visibility_s: float = 10.0) -> None:
        self._db = db
        self.visibility_s = visibility_s
        self._held: dict[int, PostgresDelivery] = {}
        self._settled = asyncio.Event()
        self._wakes: set[asyncio.Event] = set()
        self._listener = Listener(db.target, "deliveries", self._wake_all)
        self._listening: asyncio.Task[None] | None = None
        self._acks = GroupCall(self._send_acks)

    @classmethod
    async def connect(cls, url: str, visibility_s: float = 10.0) -> Self:
        return cls(await Database.open(url, POOL_SIZE), visibility_s)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
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

    async def consume(
        self, queues: Sequence[str], prefetch: int
    ) -> AsyncGenerator[PostgresDelivery, None]:
        limit = max(1, prefetch)
        mine: set[int] = set()
        buffer: list[PostgresDelivery] = []
        wake = asyncio.Event()
        self._wakes.add(wake)
        if self._listening is None:
            self._listening = asyncio.create_task(self._listener.keep_listening())
        touch = asyncio.create_task(self._keep_visible(mine))
        try:
            while True:
                if buffer:
                    yield buffer.pop(0)
                    continue
                mine.intersection_update(self._held)
                if len(mine) >= limit:
                    self._settled.clear()
                    await self._settled.wait()
                    continue
                wake.clear()
                try:
                    buffer, due_in = await self._fetch(queues, limit - len(mine))
                except BackendUnavailableError as exc:
                    # Keep consuming through an outage: the server comes back, we carry on.
                    log.warning("fetch from %s failed: %s", queues, exc)
                    await asyncio.sleep(OUTAGE_PAUSE_S)
                    continue
                mine.update(d.row_id for d in buffer)
                if not buffer:
                    await sleep_until(wake, min(FALLBACK_POLL_S, due_in))
        finally:
            touch.cancel()
            self._wakes.discard(wake)
            for delivery in buffer:  # fetched, never handed out: give them back now
                with contextlib.suppress(BackendUnavailableError):
                    await delivery.nack()

    async def _fetch(self, queues: Sequence[str], n: int) -> tuple[list[PostgresDelivery], float]:
        receipt = secrets.token_hex(8)
        rows = await self._db.fetch(FETCH, list(queues), n, receipt, float(self.visibility_s))
        fetched = [
            PostgresDelivery(self, r["id"], receipt, r["task_id"], r["queue"])
            for r in rows
            if r["id"] is not None
        ]
        self._held.update((d.row_id, d) for d in fetched)
        due = [r["due_in"] for r in rows if r["id"] is None and r["due_in"] is not None]
        return fetched, max(0.0, due[0]) if due else FALLBACK_POLL_S

    def _release(self, delivery: PostgresDelivery) -> None:
        # No longer kept visible from here on: if the statement below fails, the row's
        # deadline lapses and it is delivered again.
        self._held.pop(delivery.row_id, None)
        self._settled.set()

    async def _nack(self, delivery: PostgresDelivery, delay_s: float) -> None:
        self._release(delivery)
        await self._db.fetch(
            NACK,
            delivery.row_id,
            delivery.receipt,
            float(delay_s),
            self._db.target.channel("deliveries"),
        )

    async def _ack(self, delivery: PostgresDelivery) -> None:
        """Acks made while one batch is on the wire go together in the next (group.py)."""
        self._release(delivery)
        await self._acks(delivery.row_id, delivery.receipt)

    async def _send_acks(self, calls: list[Sequence[Any]]) -> list[Any]:
        await self._db.execute(ACK, [row_id for row_id, _ in calls], [r for _, r in calls])
        return [None] * len(calls)

    def _wake_all(self) -> None:
        for wake in self._wakes:
            wake.set()

    async def _keep_visible(self, mine: set[int]) -> None:
        """Push the visibility deadline of held rows forward while this consumer lives."""
        while True:
            await asyncio.sleep(self.visibility_s / 3)
            held = [d for i in list(mine) if (d := self._held.get(i))]
            if held:
                with contextlib.suppress(BackendUnavailableError):
                    await self._db.execute(
                        TOUCH,
                        [d.row_id for d in held],
                        [d.receipt for d in held],
                        float(self.visibility_s),
                    )
