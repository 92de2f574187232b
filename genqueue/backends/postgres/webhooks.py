"""The PostgreSQL store's webhook deliveries (``migrations/017_webhooks.sql``): one statement
each, times from the server clock. ``submit`` stores a submit's webhook targets in the
submit's own transaction; the store delegates its "webhook" methods to
:class:`PostgresWebhooks` (``contracts.Store``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genqueue.backends.postgres.db import Conn, Database
from genqueue.backends.postgres.rows import TASK_COLUMNS, Row
from genqueue.models import Batch, NewTask
from genqueue.webhooks.records import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
)

_COLUMNS = "id, task_id, batch_id, url, event, body, state, attempts, next_at, created_at, log"

ADD = f"""
INSERT INTO webhook_deliveries ({_COLUMNS})
SELECT d.id, d.task_id, d.batch_id, d.url, d.event, d.body, 'pending', 0, now(), d.created_at,
    '[]'::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::timestamptz[]) AS d(id, task_id, batch_id, url, event, body, created_at)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""
# SKIP LOCKED: senders taking at once take disjoint rows.
TAKE = f"""
UPDATE webhook_deliveries SET next_at = now() + make_interval(secs => $2)
WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_at <= now()
             ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING {_COLUMNS}
"""
RECORD = """
UPDATE webhook_deliveries SET log = log || jsonb_build_array($2::jsonb),
    attempts = attempts + 1, state = $3,
    next_at = CASE WHEN $3 = 'pending' THEN now() + make_interval(secs => $4) END
WHERE id = $1 AND state = 'pending'
RETURNING id
"""
# Made before the cutoff, and its task (or its batch, for batch.finished) is gone.
PURGE = """
DELETE FROM webhook_deliveries w WHERE created_at < now() - make_interval(secs => $1)
    AND CASE WHEN task_id IS NOT NULL
             THEN NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = w.task_id)
             ELSE NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = w.batch_id) END
"""
_KEEP_TASKS = f"""
UPDATE tasks t SET webhook = w.webhook::jsonb
FROM unnest($1::text[], $2::text[]) AS w(id, webhook) WHERE t.id = w.id
RETURNING {", ".join(f"t.{c.strip()}" for c in TASK_COLUMNS.split(","))}
"""


async def submit(
    conn: Conn, sql: str, args: Sequence[Any], tasks: Sequence[NewTask], batch: Batch | None
) -> list[Any]:
    """Run the store's SUBMIT statement; with webhooks, in one transaction with the update
    that keeps them, and with the created tasks' rows as updated."""
    targets = {t.id: t.webhook.model_dump_json() for t in tasks if t.webhook is not None}
    batch_target = batch.webhook if batch is not None else None
    if not targets and batch_target is None:
        rows: list[Any] = await conn.fetch(sql, *args)
        return rows
    async with conn.transaction():
        rows = await conn.fetch(sql, *args)
        if batch is not None and batch_target is not None:
            await conn.execute(
                "UPDATE batches SET webhook = $2::jsonb WHERE id = $1",
                batch.id,
                batch_target.model_dump(mode="json"),
            )
        created = [r["id"] for r in rows if r["created"] and r["id"] in targets]
        updated = {
            r["id"]: r
            for r in await conn.fetch(_KEEP_TASKS, created, [targets[i] for i in created])
        }
    return [
        {**dict(r), **dict(updated[r["id"]])} if r["id"] in updated and r["created"] else r
        for r in rows
    ]


def _delivery(row: Row) -> WebhookDelivery:
    return WebhookDelivery(
        id=row["id"],
        task_id=row["task_id"],
        batch_id=row["batch_id"],
        url=row["url"],
        event=row["event"],
        body=row["body"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_at"],
        created_at=row["created_at"],
        log=[WebhookAttempt.model_validate(item) for item in row["log"]],
    )


class PostgresWebhooks:
    """The webhook methods of ``PostgresStore``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, deliveries: Sequence[WebhookDelivery]) -> list[str]:
        if not deliveries:
            return []
        columns = [
            [d.id for d in deliveries],
            [d.task_id for d in deliveries],
            [d.batch_id for d in deliveries],
            [d.url for d in deliveries],
            [d.event for d in deliveries],
            [d.body for d in deliveries],
            [d.created_at for d in deliveries],
        ]
        # Safe to retry: a repeat inserts nothing (it may then report fewer as created).
        return [r["id"] for r in await self._db.fetch(ADD, *columns)]

    async def take(self, limit: int, hold_s: float) -> list[WebhookDelivery]:
        if limit <= 0:
            return []
        rows = await self._db.fetch(TAKE, limit, float(hold_s), retry=False)
        return [_delivery(r) for r in rows]

    async def record_attempt(
        self, delivery_id: str, attempt: WebhookAttempt, state: DeliveryState, retry_in_s: float
    ) -> bool:
        row = await self._db.fetchrow(
            RECORD,
            delivery_id,
            attempt.model_dump(mode="json"),
            state.value,
            float(retry_in_s),
            retry=False,  # a repeat would log the attempt twice
        )
        return row is not None

    async def deliveries(
        self, *, task_id: str | None = None, batch_id: str | None = None
    ) -> list[WebhookDelivery]:
        column, value = ("task_id", task_id) if task_id is not None else ("batch_id", batch_id)
        if value is None:
            return []
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM webhook_deliveries WHERE {column} = $1"
            " ORDER BY created_at, id",
            value,
        )
        return [_delivery(r) for r in rows]

    async def pending(self) -> int:
        count = await self._db.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'"
        )
        return int(count)

    async def cursor(self) -> str | None:
        value = await self._db.fetchval("SELECT event_id FROM webhook_cursor")
        return None if value is None else str(value)

    async def save_cursor(self, event_id: str) -> None:
        await self._db.execute(
            "INSERT INTO webhook_cursor (id, event_id) VALUES (1, $1)"
            " ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id",
            event_id,
        )
