"""SqliteBroker: the Broker contract on the ``deliveries`` table of the same SQLite file.

A fetch marks rows with a fresh receipt and a visibility deadline (``locked_until``) in one
UPDATE ... RETURNING, so two consumers never get the same row at once. While a consumer lives
it keeps pushing the deadline of what it holds forward; a consumer that dies stops doing so,
and its rows become visible again after ``visibility_s``. Ack deletes the row, nack clears the
receipt; both match on the receipt, so a stale consumer cannot touch a row fetched since.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Self

from genqueue.backends.sqlite.db import Database
from genqueue.backends.sqlite.doorbell import Doorbell
from genqueue.contracts import BrokerStatus, Message, QueueStatus

Conn = sqlite3.Connection
FALLBACK_POLL_S = 0.5  # an idle consumer looks anyway this often (the doorbell is a hint)


@dataclass
class SqliteDelivery:
    """One fetched row; ``ack``/``nack`` are fenced by the fetch's receipt."""

    broker: SqliteBroker
    row_id: int
    receipt: str
    task_id: str
    queue: str
    priority: int
    _done: bool = field(default=False, repr=False)

    async def ack(self) -> None:
        if self._done:
            return
        self._done = True
        await self.broker._settle(self, delete=True, delay_s=0.0)

    async def nack(self, delay_s: float = 0.0) -> None:
        if self._done:
            return
        self._done = True
        await self.broker._settle(self, delete=False, delay_s=delay_s)


class SqliteBroker:
    """The Broker contract on SQLite. See ``genqueue.contracts.Broker``."""

    def __init__(self, db: Database, visibility_s: float = 10.0) -> None:
        self._db = db
        self.visibility_s = visibility_s
        self._held: dict[int, SqliteDelivery] = {}
        self._settled = asyncio.Event()
        self._bell = Doorbell(db.path, "deliveries")

    @classmethod
    async def connect(cls, url: str, visibility_s: float = 10.0) -> Self:
        return cls(await Database.open(url), visibility_s)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._bell.close()
        await self._db.aclose()

    async def ping(self) -> None:
        await self._db.run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def publish(self, messages: Sequence[Message]) -> None:
        now = time.time()
        rows = [(m.queue, m.task_id, m.priority, now + m.delay_s) for m in messages]
        await self._db.write(
            lambda conn: conn.executemany(
                "INSERT INTO deliveries (queue, task_id, priority, available_at)"
                " VALUES (?, ?, ?, ?)",
                rows,
            )
        )
        self._bell.ring()

    async def depth(self, queue: str) -> int:
        def run(conn: Conn) -> int:
            n: int = conn.execute(
                "SELECT count(*) FROM deliveries WHERE queue = ?"
                " AND (locked_until IS NULL OR locked_until < ?)",
                (queue, time.time()),
            ).fetchone()[0]
            return n

        return await self._db.run(run)

    async def status(self, queues: Sequence[str]) -> BrokerStatus:
        def run(conn: Conn) -> dict[str, tuple[int, int]]:
            rows = conn.execute(
                "SELECT queue, sum(locked_until IS NULL OR locked_until < ?),"
                " sum(locked_until >= ?) FROM deliveries GROUP BY queue",
                (time.time(), time.time()),
            ).fetchall()
            return {q: (int(ready or 0), int(held or 0)) for q, ready, held in rows}

        try:
            counts = await self._db.run(run)
        except Exception as exc:
            return BrokerStatus("sqlite", False, f"SQLite: {exc}", [])
        return BrokerStatus(
            "sqlite",
            True,
            f"SQLite {sqlite3.sqlite_version}, the store's file",
            [QueueStatus(q, *counts.get(q, (0, 0))) for q in queues],
        )

    async def consume(
        self, queues: Sequence[str], prefetch: int
    ) -> AsyncGenerator[SqliteDelivery, None]:
        limit = max(1, prefetch)
        mine: set[int] = set()
        buffer: list[SqliteDelivery] = []
        touch = asyncio.create_task(self._keep_visible(mine))
        try:
            with self._bell.listen() as bell:
                while True:
                    if buffer:
                        yield buffer.pop(0)
                        continue
                    mine.intersection_update(self._held)
                    if len(mine) >= limit:
                        self._settled.clear()
                        await self._settled.wait()
                        continue
                    buffer, next_due = await self._fetch(queues, limit - len(mine))
                    mine.update(d.row_id for d in buffer)
                    if not buffer:
                        await bell.wait(min(FALLBACK_POLL_S, next_due))
        finally:
            touch.cancel()
            for delivery in buffer:  # fetched, never handed out: give them back now
                await delivery.nack()

    async def _fetch(self, queues: Sequence[str], n: int) -> tuple[list[SqliteDelivery], float]:
        """Take up to ``n`` due messages; when there are none, also say in how many seconds
        the next delayed one comes due."""
        receipt = secrets.token_hex(8)
        marks = ", ".join("?" for _ in queues)

        def run(conn: Conn) -> tuple[list[sqlite3.Row], float]:
            now = time.time()
            rows = conn.execute(
                "UPDATE deliveries SET receipt = ?, locked_until = ? WHERE id IN ("
                f" SELECT id FROM deliveries WHERE queue IN ({marks}) AND available_at <= ?"
                " AND (locked_until IS NULL OR locked_until < ?)"
                " ORDER BY priority DESC, id LIMIT ?) RETURNING id, queue, task_id, priority",
                (receipt, now + self.visibility_s, *queues, now, now, n),
            ).fetchall()
            if rows:
                return rows, 0.0
            due = conn.execute(
                f"SELECT min(available_at) FROM deliveries WHERE queue IN ({marks})"
                " AND available_at > ?",
                (*queues, now),
            ).fetchone()[0]
            return rows, FALLBACK_POLL_S if due is None else max(0.0, due - now)

        rows, next_due = await self._db.write(run)
        rows.sort(key=lambda r: (-r["priority"], r["id"]))
        fetched = [
            SqliteDelivery(self, r["id"], receipt, r["task_id"], r["queue"], r["priority"])
            for r in rows
        ]
        self._held.update((d.row_id, d) for d in fetched)
        return fetched, next_due

    async def _settle(self, delivery: SqliteDelivery, *, delete: bool, delay_s: float) -> None:
        self._held.pop(delivery.row_id, None)
        self._settled.set()
        key = (delivery.row_id, delivery.receipt)
        params: tuple[object, ...]
        if delete:
            sql, params = "DELETE FROM deliveries WHERE id = ? AND receipt = ?", key
        else:
            sql = (
                "UPDATE deliveries SET receipt = NULL, locked_until = NULL, available_at = ?"
                " WHERE id = ? AND receipt = ?"
            )
            params = (time.time() + delay_s, *key)
        await self._db.write(lambda conn: conn.execute(sql, params))
        if not delete:
            self._bell.ring()

    async def _keep_visible(self, mine: set[int]) -> None:
        """Push the visibility deadline of held rows forward while this consumer lives."""
        while True:
            await asyncio.sleep(self.visibility_s / 3)
            held = [(d.row_id, d.receipt) for i in list(mine) if (d := self._held.get(i))]
            if not held:
                continue
            until = time.time() + self.visibility_s
            await self._db.write(
                lambda conn: conn.executemany(
                    "UPDATE deliveries SET locked_until = ? WHERE id = ? AND receipt = ?",
                    [(until, row_id, receipt) for row_id, receipt in held],  # noqa: B023
                )
            )
