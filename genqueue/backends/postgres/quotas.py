"""The PostgreSQL store's submit quotas (``migrations/015_quotas.sql``; policy in
``genqueue/api/quotas.py``): one statement each.

``SPEND`` is a single ``INSERT ... ON CONFLICT DO UPDATE ... WHERE``: PostgreSQL locks the
key's row and evaluates the condition on its latest version, so concurrent spends from any
number of processes never both take the last places. The window is read from the server's
clock, so API machines with skewed clocks agree on it. Counts read the partial indexes
``tasks_unfinished`` and ``tasks_queued_in`` at most ``upto`` entries deep.
"""

from __future__ import annotations

from genqueue.backends.postgres.db import Database
from genqueue.contracts import QuotaWindow

# $1 key id, $2 tasks, $3 per window, $4 window length in seconds. No row: refused.
SPEND = """
WITH w AS (SELECT floor(extract(epoch FROM now()) / $4::float8)::bigint AS no,
                  extract(epoch FROM now())::float8 AS at)
INSERT INTO quota_windows AS q (key_id, window_no, used)
SELECT $1::text, w.no, $2::integer FROM w WHERE $2::integer <= $3::integer
ON CONFLICT (key_id) DO UPDATE SET
    window_no = excluded.window_no,
    used = CASE WHEN q.window_no = excluded.window_no THEN q.used ELSE 0 END + excluded.used
WHERE CASE WHEN q.window_no = excluded.window_no THEN q.used ELSE 0 END + excluded.used <= $3
RETURNING q.used, (SELECT at FROM w) AS at
"""
# What a refused spend reports: the count of the current window as it stands.
CURRENT = """
WITH w AS (SELECT floor(extract(epoch FROM now()) / $2::float8)::bigint AS no,
                  extract(epoch FROM now())::float8 AS at)
SELECT coalesce((SELECT used FROM quota_windows, w
                 WHERE key_id = $1 AND window_no = w.no), 0) AS used, w.at
FROM w
"""
UNFINISHED = """
SELECT count(*) FROM (SELECT 1 FROM tasks
    WHERE user_name = $1 AND status IN ('queued', 'running') LIMIT $2) AS found
"""
QUEUED = """
SELECT count(*) FROM (SELECT 1 FROM tasks WHERE queue = $1 AND status = 'queued' LIMIT $2)
    AS found
"""


def _resets_in_s(at: float, window_s: float) -> float:
    return (at // window_s + 1) * window_s - at


class PostgresQuotas:
    """``Store.quotas``: ``spend``, ``count_unfinished``, ``count_queued``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def spend(self, key_id: str, tasks: int, per_window: int, window_s: float) -> QuotaWindow:
        # Not retried: a spend that committed before the connection dropped would count twice.
        row = await self._db.fetchrow(SPEND, key_id, tasks, per_window, window_s, retry=False)
        if row is not None:
            return QuotaWindow(True, row["used"], _resets_in_s(row["at"], window_s))
        now = await self._db.fetchrow(CURRENT, key_id, window_s)
        return QuotaWindow(False, now["used"], _resets_in_s(now["at"], window_s))

    async def count_unfinished(self, user: str, upto: int) -> int:
        return int(await self._db.fetchval(UNFINISHED, user, max(0, upto)))

    async def count_queued(self, queue: str, upto: int) -> int:
        return int(await self._db.fetchval(QUEUED, queue, max(0, upto)))
