"""SqliteBroker: the Broker contract on the ``deliveries`` table of the same SQLite file.

A fetch marks rows with a fresh receipt and a visibility deadline (``locked_until``) in one
UPDATE ... RETURNING, so two consumers never get the same row at once. While a consumer lives
it keeps pushing the deadline of what it holds forward; a consumer that dies stops doing so,
and its rows become visible again after ``visibility_s``. Ack deletes the row, nack clears the
receipt; both match on the receipt, so a stale consumer cannot touch a row fetched since.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import AsyncGenerator, Sequence
from typing import Self

from genqueue.backends.pull import FALLBACK_POLL_S, Bell, Fetched, PullDelivery, Puller
from genqueue.backends.sqlite.db import Database
from genqueue.backends.sqlite.doorbell import Doorbell
from genqueue.contracts import BrokerStatus, Message, QueueStatus

Conn = sqlite3.Connection


class SqliteBroker:
    """The Broker contract on SQLite. See ``genqueue.contracts.Broker``."""

    def __init__(self, db: Database, visibility_s: float = 10.0) -> None:
        self._db = db
        self.visibility_s = visibility_s
        self._bell = Doorbell(db.path, "deliveries")
        self._puller = Puller(self, visibility_s)

    @classmethod
    async def connect(cls, url: str, visibility_s: float = 10.0) -> Self:
        return cls(await Database.open(url), visibility_s)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._puller.aclose()
        self._bell.close()
        await self._db.aclose()

    async def ping(self) -> None:
        await self._db.ping()

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

    def consume(self, queues: Sequence[str], prefetch: int) -> AsyncGenerator[PullDelivery, None]:
        return self._puller.deliveries(queues, prefetch)

    def bell(self) -> contextlib.AbstractAsyncContextManager[Bell]:
        return self._bell.bell()

    async def fetch(
        self, queues: Sequence[str], n: int, receipt: str, visibility_s: float
    ) -> tuple[list[Fetched], float]:
        marks = ", ".join("?" for _ in queues)

        def wait(conn: Conn, now: float) -> float:
            """How long until a delayed message is due (or the fallback poll, if none)."""
            due = conn.execute(
                f"SELECT min(available_at) FROM deliveries WHERE queue IN ({marks})"
                " AND available_at > ?",
                (*queues, now),
            ).fetchone()[0]
            return FALLBACK_POLL_S if due is None else max(0.0, due - now)

        def look(conn: Conn) -> tuple[bool, float]:
            """Whether a fetch would find anything, else how long until one might: a read,
            which WAL lets run beside writers, so idle consumers (one per worker, or more)
            do not queue for the write lock every time they look."""
            now = time.time()
            ready = conn.execute(
                f"SELECT 1 FROM deliveries WHERE queue IN ({marks}) AND available_at <= ?"
                " AND (locked_until IS NULL OR locked_until < ?) LIMIT 1",
                (*queues, now, now),
            ).fetchone()
            return (True, 0.0) if ready is not None else (False, wait(conn, now))

        def run(conn: Conn) -> tuple[list[sqlite3.Row], float]:
            now = time.time()
            rows = conn.execute(
                "UPDATE deliveries SET receipt = ?, locked_until = ? WHERE id IN ("
                f" SELECT id FROM deliveries WHERE queue IN ({marks}) AND available_at <= ?"
                " AND (locked_until IS NULL OR locked_until < ?)"
                " ORDER BY priority DESC, id LIMIT ?) RETURNING id, queue, task_id, priority",
                (receipt, now + visibility_s, *queues, now, now, n),
            ).fetchall()
            return rows, 0.0 if rows else wait(conn, now)

        ready, next_due = await self._db.run(look)
        if not ready:
            return [], next_due
        rows, next_due = await self._db.write(run)
        rows.sort(key=lambda r: (-r["priority"], r["id"]))
        return [Fetched(r["id"], r["task_id"], r["queue"], r["priority"]) for r in rows], next_due

    async def settle(self, delivery: PullDelivery, delay_s: float | None) -> None:
        key = (delivery.key, delivery.receipt)
        params: tuple[object, ...]
        if delay_s is None:
            sql, params = "DELETE FROM deliveries WHERE id = ? AND receipt = ?", key
        else:
            sql = (
                "UPDATE deliveries SET receipt = NULL, locked_until = NULL, available_at = ?"
                " WHERE id = ? AND receipt = ?"
            )
            params = (time.time() + delay_s, *key)
        await self._db.write(lambda conn: conn.execute(sql, params))
        if delay_s is not None:
            self._bell.ring()

    async def touch(self, held: Sequence[PullDelivery], visibility_s: float) -> None:
        until = time.time() + visibility_s
        await self._db.write(
            lambda conn: conn.executemany(
                "UPDATE deliveries SET locked_until = ? WHERE id = ? AND receipt = ?",
                [(until, d.key, d.receipt) for d in held],
            )
        )
