"""The PostgreSQL store's result expiry and result cache (``migrations/016_expiry.sql``): the
purge statement that leaves tombstones, and one read each for ``tombstone`` and ``cached``."""

from __future__ import annotations

from genqueue.backends.postgres.db import Database
from genqueue.backends.postgres.rows import TASK_COLUMNS, task_from_row
from genqueue.models import Task, Tombstone

# $1 retention (s), $2 how long tombstones are kept (s; 0: none). One statement: the finished
# tasks past retention are deleted, each leaves a tombstone, and tombstones past theirs go.
PURGE_TASKS = """
WITH gone AS (
    DELETE FROM tasks WHERE status IN ('succeeded', 'failed', 'cancelled', 'expired')
        AND finished_at < now() - make_interval(secs => $1::float8)
    RETURNING id, user_name, finished_at
), kept AS (
    INSERT INTO tombstones (task_id, user_name, expired_at, forget_at)
    SELECT id, user_name, finished_at + make_interval(secs => $1::float8),
           now() + make_interval(secs => $2::float8)
    FROM gone WHERE $2::float8 > 0
    ON CONFLICT (task_id) DO NOTHING
), forgotten AS (
    DELETE FROM tombstones WHERE forget_at <= now()
)
SELECT id FROM gone
"""

TOMBSTONE = """
SELECT task_id, user_name, expired_at FROM tombstones WHERE task_id = $1 AND forget_at > now()
"""

# The status spelled out so that the partial index tasks_cache serves it.
CACHED = f"""
SELECT {TASK_COLUMNS} FROM tasks
WHERE cache_key = $1 AND status = 'succeeded' AND kind = $2
    AND user_name IS NOT DISTINCT FROM $3::text
    AND finished_at > now() - make_interval(secs => $4::float8)
ORDER BY finished_at DESC LIMIT 1
"""


class PostgresExpiry:
    """``tombstone`` and ``cached`` of the store (``purge`` runs :data:`PURGE_TASKS` in its
    own transaction)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def tombstone(self, task_id: str) -> Tombstone | None:
        row = await self._db.fetchrow(TOMBSTONE, task_id)
        if row is None:
            return None
        return Tombstone(
            task_id=row["task_id"], user=row["user_name"], expired_at=row["expired_at"]
        )

    async def cached(
        self, user: str | None, kind: str, cache_key: str, fresh_s: float
    ) -> Task | None:
        row = await self._db.fetchrow(CACHED, cache_key, kind, user, float(fresh_s))
        return None if row is None else task_from_row(row)
