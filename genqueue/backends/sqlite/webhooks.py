"""The SQLite store's webhook deliveries (tables ``webhook_deliveries`` and ``webhook_cursor``
in schema.sql; ``tasks.webhook`` and ``batches.webhook`` hold targets as JSON). Plain functions
over a connection, run inside the store's transactions, and :class:`SqliteWebhooks`, whose
methods the store delegates to (``contracts.Store``, "webhook" methods)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from genqueue.backends.sqlite.db import Database
from genqueue.models import Batch, NewTask, Task, maybe_from_epoch
from genqueue.webhooks.records import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookTarget,
)

Conn = sqlite3.Connection
_COLUMNS = "id, task_id, batch_id, url, event, body, state, attempts, next_at, created_at, log"


def target_of(text: str | None) -> WebhookTarget | None:
    """A ``webhook`` column (JSON text or NULL) as a target."""
    return None if text is None else WebhookTarget.model_validate_json(text)


def keep_targets(
    conn: Conn, out: list[tuple[Task, bool]], tasks: Sequence[NewTask], batch: Batch | None
) -> list[tuple[Task, bool]]:
    """Store the webhooks of a submit's created tasks (and of its batch) in its transaction;
    ``out`` (the submit's answer, in input order) comes back with them."""
    if batch is not None and batch.webhook is not None:
        conn.execute(
            "UPDATE batches SET webhook = ? WHERE id = ?",
            (batch.webhook.model_dump_json(), batch.id),
        )
    kept = []
    for (task, created), new in zip(out, tasks, strict=True):
        if created and new.webhook is not None:
            conn.execute(
                "UPDATE tasks SET webhook = ? WHERE id = ?",
                (new.webhook.model_dump_json(), task.id),
            )
            task = task.model_copy(update={"webhook": new.webhook})
        kept.append((task, created))
    return kept


def purge(conn: Conn, cutoff: float) -> None:
    """Deliveries made before ``cutoff`` whose task (or batch, for batch.finished) is gone."""
    conn.execute(
        "DELETE FROM webhook_deliveries WHERE created_at < ? AND CASE"
        " WHEN task_id IS NOT NULL THEN NOT EXISTS (SELECT 1 FROM tasks WHERE id = task_id)"
        " ELSE NOT EXISTS (SELECT 1 FROM batches WHERE id = batch_id) END",
        (cutoff,),
    )


def _delivery(row: sqlite3.Row) -> WebhookDelivery:
    return WebhookDelivery(
        id=row["id"],
        task_id=row["task_id"],
        batch_id=row["batch_id"],
        url=row["url"],
        event=row["event"],
        body=row["body"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        next_attempt_at=maybe_from_epoch(row["next_at"]),
        created_at=maybe_from_epoch(row["created_at"]),
        log=[WebhookAttempt.model_validate(item) for item in json.loads(row["log"])],
    )


def _add(conn: Conn, deliveries: Sequence[WebhookDelivery], now: float) -> list[str]:
    created = []
    for d in deliveries:
        row = conn.execute(
            f"INSERT INTO webhook_deliveries ({_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, '[]')"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            (d.id, d.task_id, d.batch_id, d.url, d.event, d.body, now, d.created_at.timestamp()),
        ).fetchone()
        if row is not None:
            created.append(d.id)
    return created


def _take(conn: Conn, limit: int, hold_s: float, now: float) -> list[WebhookDelivery]:
    rows = conn.execute(
        f"UPDATE webhook_deliveries SET next_at = ? WHERE id IN (SELECT id FROM"
        " webhook_deliveries WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?)"
        f" RETURNING {_COLUMNS}",
        (now + hold_s, now, limit),
    ).fetchall()
    return [_delivery(r) for r in rows]


def _record(
    conn: Conn,
    delivery_id: str,
    attempt: WebhookAttempt,
    state: DeliveryState,
    retry_in_s: float,
    now: float,
) -> bool:
    row = conn.execute(
        "SELECT log FROM webhook_deliveries WHERE id = ? AND state = 'pending'", (delivery_id,)
    ).fetchone()
    if row is None:
        return False
    log = [*json.loads(row["log"]), attempt.model_dump(mode="json")]
    next_at = now + retry_in_s if state == DeliveryState.PENDING else None
    conn.execute(
        "UPDATE webhook_deliveries SET log = ?, attempts = attempts + 1, state = ?, next_at = ?"
        " WHERE id = ?",
        (json.dumps(log), state.value, next_at, delivery_id),
    )
    return True


class SqliteWebhooks:
    """The webhook methods of ``SqliteStore``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, deliveries: Sequence[WebhookDelivery]) -> list[str]:
        if not deliveries:
            return []
        return await self._db.write(lambda conn: _add(conn, deliveries, time.time()))

    async def take(self, limit: int, hold_s: float) -> list[WebhookDelivery]:
        if limit <= 0:
            return []
        return await self._db.write(lambda conn: _take(conn, limit, hold_s, time.time()))

    async def record_attempt(
        self, delivery_id: str, attempt: WebhookAttempt, state: DeliveryState, retry_in_s: float
    ) -> bool:
        return await self._db.write(
            lambda conn: _record(conn, delivery_id, attempt, state, retry_in_s, time.time())
        )

    async def deliveries(
        self, *, task_id: str | None = None, batch_id: str | None = None
    ) -> list[WebhookDelivery]:
        column, value = ("task_id", task_id) if task_id is not None else ("batch_id", batch_id)
        if value is None:
            return []
        rows = await self._db.run(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM webhook_deliveries WHERE {column} = ?"
                " ORDER BY created_at, id",
                (value,),
            ).fetchall()
        )
        return [_delivery(r) for r in rows]

    async def pending(self) -> int:
        count: int = await self._db.run(
            lambda conn: conn.execute(
                "SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'"
            ).fetchone()[0]
        )
        return count

    async def cursor(self) -> str | None:
        row = await self._db.run(
            lambda conn: conn.execute("SELECT event_id FROM webhook_cursor").fetchone()
        )
        return None if row is None else str(row[0])

    async def save_cursor(self, event_id: str) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT INTO webhook_cursor (id, event_id) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id",
                (event_id,),
            )
        )
