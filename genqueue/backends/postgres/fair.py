"""Fair order on PostgreSQL: ``claim_next`` and ``position`` (the rule is in
``genqueue.contracts.Store.claim_next``; tags are written by ``tags.py``; schema in
``migrations/006_fair.sql``).

The line of a queue is its queued tasks with a ``fair_tag``, read in (priority desc, tag, seq)
order from two partial indexes: ``tasks_next`` (claimable at once) and ``tasks_parked``
(waiting for a permit). Tasks not in line yet (delayed, or requeued for later: ``fair_tag``
NULL) sit in ``tasks_scheduled`` by due time, so the line never holds a task that is not due.

``claim_next`` is one statement (CLAIM_NEXT) on the plain path: it takes the head of
``tasks_next`` with ``FOR UPDATE SKIP LOCKED`` (concurrent claimers take different rows),
probes ``tasks_parked`` and ``tasks_scheduled`` once each, and claims the head when nothing
comes first. Otherwise it says why, and ``FairClaims`` takes the slow path and asks again:
due tasks not in line join it first (MAKE_READY); a parked task ahead sends it to read which
resources have a free permit now, and parked tasks of those count as claimable; a head past
its ``start_by`` is expired by the statement itself; a head whose resource has a limiter goes
to ``Limits.claim``, which admits or parks it under the limiter's lock. A worker's calls are
grouped into one transaction as the store's claims are.

Messages are credits for the queue, one per task that is not parked: a call that parks a
task spends its message on it (``Waiting``); one that finds its head parked already (by a
call at the same time, or for a permit that proved taken) passes it over and goes on, since
a parked task is owed a message of its own when a permit frees; one that claims a parked
task gives the queue a message back (see ``limits.ADMIT``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from genqueue.backends.group import GroupCall
from genqueue.backends.postgres.db import Conn, Database
from genqueue.backends.postgres.limits import Full, Limits
from genqueue.backends.postgres.queries import (
    EXPIRE_SET,
    EXPIRED_EVENTS,
    LIMITED,
    STARTED,
    T_COLUMNS,
    UNLIMITED,
    claim_update,
    due,
)
from genqueue.backends.postgres.rows import TASK_COLUMNS, lease_from, task_from_row
from genqueue.backends.postgres.tags import INCREMENT, USER_KEY, tag_ctes
from genqueue.contracts import Claim, Waiting

READY_BATCH = 500  # due tasks a MAKE_READY brings into line, at most (claim_next repeats it)

ORDER = "ORDER BY priority DESC, fair_tag, seq"
LINE = "queue = $1 AND status = 'queued' AND fair_tag IS NOT NULL"
PICK = "id, priority, fair_tag, seq, start_by"
NO_TASK = ", ".join(["NULL"] * len(TASK_COLUMNS.split(",")))

# $1 queue, $2 worker, $3 token, $4 lease_s; $5 resources whose parked tasks may be claimed
# (NULL: not read yet, so a parked task ahead of the head stops the claim: 'parked'); $6 whether
# due tasks not in line stop it ('scheduled'); $7 ids to pass over (taken earlier in this
# transaction, for limits.py). The head is claimed ('claimed'), expired ('expired'), or
# returned for limits.py ('limited'); no row: nothing to claim.
CLAIM_NEXT = f"""
WITH pick AS MATERIALIZED (
    SELECT * FROM (
        SELECT * FROM (
            SELECT {PICK} FROM tasks
            WHERE {LINE} AND waiting_for IS NULL AND not_before <= now()
                AND id <> ALL($7::text[])
            {ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED) a
        UNION ALL
        SELECT p.* FROM unnest($5::text[]) AS r(resource) CROSS JOIN LATERAL (
            SELECT {PICK} FROM tasks
            WHERE {LINE} AND waiting_for = r.resource AND id <> ALL($7::text[])
            {ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED) p
    ) c {ORDER} LIMIT 1
), blocker AS (
    SELECT 1 FROM (
        SELECT priority, fair_tag, seq FROM tasks
        WHERE $5::text[] IS NULL AND {LINE} AND waiting_for IS NOT NULL {ORDER} LIMIT 1) b
    WHERE NOT EXISTS (SELECT 1 FROM pick p WHERE p.priority > b.priority
        OR (p.priority = b.priority AND (p.fair_tag, p.seq) < (b.fair_tag, b.seq)))
), waits AS (
    SELECT CASE WHEN s.scheduled THEN 'scheduled' ELSE 'parked' END AS outcome FROM (
        SELECT $6::boolean AND EXISTS (
                   SELECT 1 FROM tasks WHERE queue = $1 AND status = 'queued'
                       AND fair_tag IS NULL AND not_before <= now()) AS scheduled,
               EXISTS (SELECT 1 FROM blocker) AS parked) s
    WHERE s.scheduled OR s.parked
), go AS (
    SELECT * FROM pick WHERE NOT EXISTS (SELECT 1 FROM waits)
), t AS ({claim_update("now()", UNLIMITED, "(SELECT id FROM go)")}
), e AS (
    {STARTED}
), x AS (
    UPDATE tasks t SET {EXPIRE_SET}
    FROM go WHERE t.id = go.id AND t.status = 'queued' AND go.start_by <= now()
    RETURNING {T_COLUMNS}
), xe AS (
    {EXPIRED_EVENTS}
)
SELECT 'claimed' AS outcome, * FROM t
UNION ALL
SELECT 'expired', * FROM x
UNION ALL
SELECT 'limited', {TASK_COLUMNS} FROM tasks
WHERE id = (SELECT id FROM go) AND {due("now()")} AND resource IS NOT NULL AND {LIMITED}
UNION ALL
SELECT outcome, {NO_TASK} FROM waits
"""

# Store.line: the first $2 tasks of queue $1's line that CLAIM_NEXT's plain pick walks (in
# line, due, not parked), in its order; read only, so no locks (tasks_next serves it).
LINE_HEAD = f"""
SELECT id, model FROM tasks
WHERE {LINE} AND waiting_for IS NULL AND not_before <= now()
{ORDER} LIMIT $2
"""

# Bring due tasks of queue $1 that are not in line into it, oldest due first: requeued ones
# with the tag they held, new ones with a tag of their own. Returns how many.
MAKE_READY = f"""
WITH ready AS MATERIALIZED (
    SELECT id, seq AS n, queue, priority, {USER_KEY} AS user_key, {INCREMENT} AS inc, held_tag
    FROM tasks
    WHERE queue = $1 AND status = 'queued' AND fair_tag IS NULL AND not_before <= now()
    ORDER BY not_before LIMIT {READY_BATCH} FOR UPDATE SKIP LOCKED
), joining AS (
    SELECT * FROM ready WHERE held_tag IS NULL
), {tag_ctes("joining")}, made AS (
    UPDATE tasks t SET fair_tag = coalesce(ready.held_tag, tags.tag), held_tag = NULL
    FROM ready LEFT JOIN tags USING (n) WHERE t.id = ready.id
    RETURNING t.id
)
SELECT count(*) FROM made
"""


def _ahead(part: str) -> str:
    """Tasks in line in one part of task ``me``'s queue (``part``: waiting_for IS ...) that
    are ahead of it inside its fine bucket: an index-only range count of a few rows."""
    return f"""(SELECT count(*) FROM tasks t WHERE t.queue = me.queue AND t.status = 'queued'
        AND t.fair_tag IS NOT NULL AND t.waiting_for IS {part} AND t.priority = me.priority
        AND t.fair_tag >= ({_FINE} << 10)
        AND (t.fair_tag, t.seq) < (me.fair_tag, me.seq))"""


def _buckets(table: str, bucket: str, below: str, *, from_: str | None = None) -> str:
    """Tasks counted in ``table``'s buckets of ``me``'s queue that are ahead of ``me``: all of
    a higher priority and, of its own, those of a bucket below ``below``, from ``from_`` if
    given (then only its own priority)."""
    earlier = f"b.priority = me.priority AND b.{bucket} < {below}"
    if from_ is None:
        ahead = f"(b.priority > me.priority OR ({earlier}))"
    else:
        ahead = f"{earlier} AND b.{bucket} >= {from_}"
    return f"(SELECT coalesce(sum(b.n), 0) FROM {table} b WHERE b.queue = me.queue AND {ahead})"


# 1 + tasks ahead in line, parked ones included; NULL for a task not in line. The buckets
# (migrations/007_rank.sql) count whole tag ranges ahead; the index counts the rest.
_FINE = "(me.fair_tag >> 10)"
_COARSE = "(me.fair_tag >> 20)"
POSITION = f"""
SELECT CASE WHEN me.status = 'queued' AND me.fair_tag IS NOT NULL THEN 1
    + {_buckets("rank_coarse", "coarse", _COARSE)}
    + {_buckets("rank_fine", "fine", _FINE, from_=f"({_COARSE} << 10)")}
    + {_buckets("rank_delta", "fine", _FINE)}
    + {_ahead("NULL")} + {_ahead("NOT NULL")}
    END AS position
FROM tasks me WHERE me.id = $1
"""
ROLLUP = "SELECT rank_rollup()"
VACUUM_DELTAS = "VACUUM (SKIP_LOCKED) rank_delta"
ROLLUP_EVERY_S = 1.0  # how often each store folds the deltas into the buckets


class FairClaims:
    """``claim_next`` of ``PostgresStore``; see ``genqueue.contracts.Store.claim_next``."""

    def __init__(self, db: Database, limits: Limits) -> None:
        self._db = db
        self._limits = limits
        self._next = GroupCall(self._send)

    async def _send(self, calls: list[Sequence[Any]]) -> list[Any]:
        """CLAIM_NEXT once per call, in one transaction (one WAL flush for a busy worker's
        claims; a lone call is one statement). A head returned as 'limited' stays locked to
        this transaction, which would see it again: the later calls pass over it."""

        async def run(conn: Conn) -> list[Any]:
            if len(calls) == 1:
                return [await conn.fetchrow(CLAIM_NEXT, *calls[0], [])]
            rows: list[Any] = []
            taken: list[str] = []
            async with conn.transaction():
                for call in calls:
                    row = await conn.fetchrow(CLAIM_NEXT, *call, taken)
                    if row is not None and row["outcome"] == "limited":
                        taken.append(row["id"])
                    rows.append(row)
            return rows

        return await self._db.run(run)

    async def claim_next(
        self, queue: str, worker_id: str, lease_s: float
    ) -> Claim | Waiting | None:
        free: list[str] | None = None  # resources with a free permit, once read
        scheduled = True  # whether due tasks not in line may be waiting
        while True:
            token = secrets.token_hex(8)
            # Safe to retry, as claim is: a success hidden by a lost reply leaves a lease that
            # expires unrenewed, and the task runs again.
            row = await self._next(queue, worker_id, token, float(lease_s), free, scheduled)
            outcome = None if row is None else row["outcome"]
            if outcome is None:
                return None
            if outcome == "claimed":
                task = task_from_row(row)
                return Claim(lease_from(task, token), task)
            if outcome == "scheduled":
                # Rows another claimer is bringing into line are locked; rather than wait for
                # it, go on without them.
                scheduled = bool(await self._db.fetchval(MAKE_READY, queue))
            elif outcome == "parked":
                free = await self._limits.free_resources()
            elif outcome == "limited":
                found = await self._limits.claim_head(
                    row["id"], worker_id, token, float(lease_s), row["resource"], queue
                )
                if isinstance(found, Full):  # no permit after all: pass its tasks over
                    if free is not None:
                        free = [r for r in free if r != found.resource]
                elif found is not None:
                    return found
                # Else taken or expired meanwhile: the next head.
            # 'expired': the statement expired the head; the next one.
