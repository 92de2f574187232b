"""Shared limits on PostgreSQL: the claims and finishes of tasks whose resource has a limiter,
and ``configure_limits``, ``limits``, ``wake_waiting`` (schema in ``migrations/005_limits.sql``).

The store's one-statement CLAIM and FINISH hand a task over to this module when its resource
has a limiter row (they return it as 'limited'), or FINISH is skipped when the lease carries
an epoch. Here each claim or finish is one transaction that first takes the limiter row FOR
UPDATE, so the count of permits held (running tasks of the resource with a live lease) and the
state cannot change under it; the next statement then sees every commit made before the lock
was granted, and reads the clock (``clock_timestamp()``: ``now()`` is the transaction's
start, earlier by the lock wait) that the arithmetic of ``genqueue/limiter.py`` and the writes
of this transaction share. No rule of the limiter is written in SQL.

Locks are taken in one order: the limiter row, then task rows (claim, finish), never the other
way round; several limiter rows only in resource order (configure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from genqueue.backends.postgres.db import Conn, Database
from genqueue.backends.postgres.queries import (
    FINISHED_EVENT,
    SAMPLED,
    STARTED,
    claim_update,
    due,
    finish_update,
)
from genqueue.backends.postgres.rows import (
    TASK_COLUMNS,
    Finish,
    Row,
    lease_from,
    task_from_row,
)
from genqueue.contracts import Claim, Lease, Waiting
from genqueue.limiter import (
    admits,
    dump_state,
    free_permits,
    initial_state,
    load_state,
    reconfigure,
    status,
    throttle,
)
from genqueue.models import LimitStatus, from_epoch
from genqueue.settings import LimitSettings

LOCK = "SELECT state::text AS state FROM limiters WHERE resource = $1 FOR UPDATE"

# The limiter of the resource of the task leased by token $2, if it has one.
LOCK_OF_LEASE = """
SELECT l.resource, l.state::text AS state
FROM tasks t JOIN limiters l ON l.resource = t.resource
WHERE t.id = $1 AND t.lease_token = $2 AND t.status = 'running'
FOR UPDATE OF l
"""

# The clock, and the permits of resource $1 held by tasks other than $2.
HELD = """
SELECT c.now, (SELECT count(*) FROM tasks
               WHERE resource = $1 AND status = 'running' AND lease_expires_at > c.now
                   AND id <> $2) AS in_flight
FROM (SELECT clock_timestamp() AS now) c
"""

# For claim_next ($6: its queue), a parked task claimed gives its queue a credit back: the
# message spent on it was another task's (it was owed one of its own when its permit came
# free, which may be on its way, or not: a permit freed by a lease that expired wakes it only
# at the next sweep, when the permit is gone). One message too many finds nothing to claim.
ADMIT = f"""
WITH was AS MATERIALIZED (
    SELECT waiting_for FROM tasks WHERE id = $1
), t AS ({claim_update("$5::timestamptz", "true")}
), e AS (
    {STARTED}
), credit AS (
    INSERT INTO outbox (task_id, due_at)
    SELECT c.id, $5::timestamptz FROM (
        SELECT id FROM tasks
        WHERE $6::text IS NOT NULL AND queue = $6::text AND status = 'queued'
            AND fair_tag IS NOT NULL AND waiting_for IS NULL
            AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.task_id = tasks.id)
        ORDER BY priority DESC, fair_tag, seq LIMIT 1) c
    WHERE EXISTS (SELECT 1 FROM t) AND (SELECT waiting_for FROM was) IS NOT NULL
    ON CONFLICT (task_id) DO NOTHING
)
SELECT * FROM t
"""

# Park task $1 for resource $2 at clock $3; unless $4, only a task not parked yet.
PARK = f"""
UPDATE tasks SET waiting_for = $2
WHERE id = $1 AND {due("$3::timestamptz")} AND ($4::boolean OR waiting_for IS NULL)
RETURNING {TASK_COLUMNS}
"""


@dataclass(frozen=True)
class Full:
    """A claim for claim_next that found no permit of ``resource`` and no task to park: the
    task was parked already (by a claim at the same time, or earlier: then it is owed a
    message when a permit frees, and this claim's message must not be spent on it), or gone."""

    resource: str


def _parked(resource: str, n: str) -> str:
    """The first ``n`` parked tasks of ``resource``, in queue order (index tasks_waiting)."""
    return f"""SELECT id FROM tasks
        WHERE waiting_for = {resource} AND status = 'queued'
        ORDER BY priority DESC, seq LIMIT {n}"""


# FINISH ($1..$11) at clock $12, then, if it was recorded: the first $14 parked tasks of
# resource $13 are owed a message now (an entry they have is left alone), the limiter's new
# state $15 (NULL: unchanged) is stored, and the run moves its service time.
FINISH_LIMITED = f"""
WITH t AS ({finish_update("$12::timestamptz", "true")}
), e AS (
    {FINISHED_EVENT}
), {SAMPLED}, woken AS (
    INSERT INTO outbox (task_id, due_at)
    SELECT w.id, $12::timestamptz FROM ({_parked("$13::text", "$14::integer")}) w
    WHERE EXISTS (SELECT 1 FROM t)
    ON CONFLICT (task_id) DO NOTHING
), saved AS (
    UPDATE limiters SET state = $15::text::jsonb
    WHERE resource = $13::text AND $15::text IS NOT NULL AND EXISTS (SELECT 1 FROM t)
)
SELECT t.* FROM t CROSS JOIN sampled
"""


# Every limiter, with the permits it has out (and, in LIMITERS, the tasks parked for one).
HOLDERS = """
SELECT l.resource, l.state::text AS state, now() AS now,
    (SELECT count(*) FROM tasks t WHERE t.resource = l.resource AND t.status = 'running'
        AND t.lease_expires_at > now()) AS in_flight
FROM limiters l
"""
LIMITERS = f"""
SELECT h.*,
    (SELECT count(*) FROM tasks t WHERE t.waiting_for = h.resource AND t.status = 'queued')
        AS waiting
FROM ({HOLDERS}) h ORDER BY h.resource
"""

# $2[i] parked tasks of resource $1[i] are owed a message now; returns how many were picked.
WAKE = f"""
WITH want AS (
    SELECT * FROM unnest($1::text[], $2::integer[]) AS w(resource, n)
), picked AS (
    SELECT p.id FROM want CROSS JOIN LATERAL ({_parked("want.resource", "want.n")}) p
), owed AS (
    INSERT INTO outbox (task_id, due_at) SELECT id, now() FROM picked
    ON CONFLICT (task_id) DO NOTHING
)
SELECT count(*) FROM picked
"""

CREATE = """
INSERT INTO limiters (resource, state)
SELECT r, s::jsonb FROM unnest($1::text[], $2::text[]) AS i(r, s) ORDER BY r
ON CONFLICT (resource) DO NOTHING
RETURNING resource
"""
LOCK_MANY = """
SELECT resource, state::text AS state FROM limiters WHERE resource = ANY($1::text[])
ORDER BY resource FOR UPDATE
"""
SAVE_MANY = """
UPDATE limiters l SET state = i.s::jsonb FROM unnest($1::text[], $2::text[]) AS i(r, s)
WHERE l.resource = i.r
"""


class Limits:
    """The limiter half of ``PostgresStore``; see ``genqueue.contracts.Store`` for the
    guarantees of ``claim``, ``finish``, ``configure_limits``, ``limits`` and
    ``wake_waiting``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, task_id: str, worker_id: str, token: str, lease_s: float, resource: str
    ) -> Claim | Waiting | None:
        """Claim a task of ``resource`` with one of its permits, or park it."""
        found = await self._claim(task_id, worker_id, token, lease_s, resource, None)
        assert not isinstance(found, Full)  # only for claim_next
        return found

    async def claim_head(
        self, task_id: str, worker_id: str, token: str, lease_s: float, resource: str, queue: str
    ) -> Claim | Waiting | Full | None:
        """As :meth:`claim`, for claim_next of ``queue``: :class:`Full` rather than parking a
        parked task again, and a message back for the queue if a parked task is claimed."""
        return await self._claim(task_id, worker_id, token, lease_s, resource, queue)

    async def _claim(
        self,
        task_id: str,
        worker_id: str,
        token: str,
        lease_s: float,
        resource: str,
        queue: str | None,
    ) -> Claim | Waiting | Full | None:
        async def run(conn: Conn) -> Claim | Waiting | Full | None:
            async with conn.transaction():
                text = await conn.fetchval(LOCK, resource)
                held = await conn.fetchrow(HELD, resource, task_id)
                now: datetime = held["now"]
                epoch = None
                if text is not None:  # a resource never configured is not limited
                    state = load_state(text)
                    admission = admits(state, held["in_flight"], now.timestamp())
                    if not admission.admitted:
                        again = queue is None
                        row = await conn.fetchrow(PARK, task_id, resource, now, again)
                        if row is None:
                            return None if again else Full(resource)
                        blocked = admission.wait_s > 0
                        until = from_epoch(state.blocked_until) if blocked else None
                        return Waiting(task_from_row(row), until)
                    epoch = state.epoch
                row = await conn.fetchrow(ADMIT, task_id, worker_id, token, lease_s, now, queue)
            if row is None:  # not claimable any more (or past its start_by: the sweep ends it)
                return None
            task = task_from_row(row)
            return Claim(lease_from(task, token, epoch), task)

        # Safe to retry, as the store's claim is.
        return await self._db.run(run)

    async def finish(self, lease: Lease, change: Finish) -> Row | None:
        """Record ``change`` for the run holding ``lease``, free its permit and wake the parked
        tasks that permit (or a grown limit) lets start; a throttle also changes the limiter.
        None if the lease is lost."""

        async def run(conn: Conn) -> Row | None:
            async with conn.transaction():
                lock = await conn.fetchrow(LOCK_OF_LEASE, lease.task_id, lease.token)
                resource = None if lock is None else lock["resource"]
                held = await conn.fetchrow(HELD, resource, lease.task_id)
                now: datetime = held["now"]
                at = now.timestamp()
                delay_s, saved, wake = change.delay_s, None, 0
                if lock is not None:
                    state = load_state(lock["state"])
                    if change.throttled is not None:
                        # A lease taken before the limiter existed started under no epoch:
                        # its limit error is counted and blocks, but cuts nothing.
                        epoch = -1 if lease.epoch is None else lease.epoch
                        state = throttle(state, epoch, at, change.throttled.retry_after_s)
                        saved = dump_state(state)
                        delay_s = max(delay_s, state.blocked_until - at)
                    wake = free_permits(state, held["in_flight"], at)
                params = change.params(delay_s)
                return await conn.fetchrow(
                    FINISH_LIMITED, lease.task_id, lease.token, *params, now, resource, wake, saved
                )

        # Safe to retry: fenced by the token, a repeat of a stored outcome finds no lease.
        return await self._db.run(run)

    async def configure(self, policies: Mapping[str, LimitSettings]) -> None:
        names = sorted(policies)
        if not names:
            return

        async def run(conn: Conn) -> None:
            async with conn.transaction():
                now = (await conn.fetchval("SELECT clock_timestamp()")).timestamp()
                fresh = [dump_state(initial_state(policies[r], now)) for r in names]
                created = {r["resource"] for r in await conn.fetch(CREATE, names, fresh)}
                rest = [r for r in names if r not in created]
                existing = await conn.fetch(LOCK_MANY, rest) if rest else []
                changed: dict[str, str] = {}
                for row in existing:
                    state = load_state(row["state"])
                    moved = reconfigure(state, policies[row["resource"]], now)
                    if moved is not state:  # an unchanged policy is not written
                        changed[row["resource"]] = dump_state(moved)
                if changed:
                    await conn.execute(SAVE_MANY, list(changed), list(changed.values()))

        await self._db.run(run)

    async def statuses(self) -> list[LimitStatus]:
        return [
            status(r["resource"], load_state(r["state"]), r["in_flight"], r["waiting"], t)
            for r, t in _timed(await self._db.fetch(LIMITERS))
        ]

    async def _free(self) -> dict[str, int]:
        """Free permits now of every limiter that has some, read without a lock."""
        want: dict[str, int] = {}
        for r, t in _timed(await self._db.fetch(HOLDERS)):
            n = free_permits(load_state(r["state"]), r["in_flight"], t)
            if n > 0:
                want[r["resource"]] = n
        return want

    async def free_resources(self) -> list[str]:
        """The resources with a free permit now, whose parked tasks a claim may take (its
        admission under the limiter's lock decides; a permit gone meanwhile parks it again)."""
        return sorted(await self._free())

    async def wake_waiting(self) -> int:
        # Read, then wake, without a lock: a claim admitted in between makes this wake one
        # task too many, which its claim parks again; waking is never lost, only repeated.
        # Every limiter with a free permit is asked; WAKE picks only the parked tasks there are.
        want = await self._free()
        if not want:
            return 0
        return int(await self._db.fetchval(WAKE, list(want), list(want.values())))


def _timed(rows: list[Any]) -> list[tuple[Any, float]]:
    """Rows of LIMITERS with their clock as the limiter's float seconds."""
    return [(r, r["now"].timestamp()) for r in rows]
