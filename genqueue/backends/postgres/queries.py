"""The store's statements. Each verb is one statement: CTEs change the task rows and insert
their events together (schema in ``migrations/001_store.sql``), so one round trip commits
both, and asyncpg prepares each statement once per connection."""

from __future__ import annotations

from genqueue.backends.postgres.rows import TASK_COLUMNS
from genqueue.backends.postgres.tags import INCREMENT, USER_KEY, tag_ctes

T_COLUMNS = ", ".join(f"t.{c.strip()}" for c in TASK_COLUMNS.split(","))
EVENT_INSERT = "INSERT INTO events (type, task_id, status, user_name, batch_id, kind, data)"

# Safe to repeat after a lost reply: a task whose id is already stored came from an earlier
# attempt of this same call (ids are fresh uuids), so it comes back as created; a task whose
# idempotency key is taken comes back as the existing one, not created.
SUBMIT = f"""
WITH b AS (
    INSERT INTO batches (id, user_name, created_at, size)
    SELECT $1::text, $2::text, $3::timestamptz, $4::integer WHERE $1::text IS NOT NULL
    ON CONFLICT (id) DO NOTHING
), input AS (
    SELECT * FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                         $10::integer[], $11::text[], $12::text[], $13::integer[], $14::text[],
                         $15::timestamptz[], $16::timestamptz[], $17::float8[], $18::float8[],
                         $19::text[], $21::text[])
        WITH ORDINALITY AS i(id, kind, queue, payload, user_name, priority, batch_id,
                             idempotency_key, max_attempts, resource, not_before, start_by,
                             cancel_after_s, weight, model, cache_key, n)
), joining AS MATERIALIZED (
    -- The due tasks this call stores (not those an earlier attempt stored, nor a repeated
    -- idempotency key), which join their line now.
    SELECT n, queue, priority, {USER_KEY} AS user_key, {INCREMENT} AS inc FROM input i
    WHERE (not_before IS NULL OR not_before <= now())
        AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = i.id)
        AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.idempotency_key = i.idempotency_key)
        AND NOT EXISTS (SELECT 1 FROM input j
                        WHERE j.idempotency_key = i.idempotency_key AND j.n < i.n)
), {tag_ctes("joining")}, ins AS (
    INSERT INTO tasks (id, kind, queue, payload, user_name, priority, batch_id,
                       idempotency_key, status, max_attempts, resource, not_before, start_by,
                       cancel_after_s, weight, model, cache_key, fair_tag)
    SELECT id, kind, queue, payload::jsonb, user_name, priority, batch_id, idempotency_key,
           'queued', max_attempts, resource, coalesce(not_before, now()), start_by,
           cancel_after_s, weight, model, cache_key, tags.tag
    FROM input LEFT JOIN tags USING (n) ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING {TASK_COLUMNS}
), ev AS (
    {EVENT_INSERT}
    SELECT 'task.queued', id, 'queued', user_name, batch_id, kind, '{{}}' FROM ins
), owed AS (
    INSERT INTO outbox (task_id, due_at) SELECT id, now() + make_interval(secs => $20) FROM ins
)
SELECT i.n, x.* FROM input i CROSS JOIN LATERAL (
    SELECT 1 AS rank, true AS created, ins.* FROM ins WHERE ins.id = i.id
    UNION ALL
    SELECT 2, true, {TASK_COLUMNS} FROM tasks WHERE tasks.id = i.id
    UNION ALL
    SELECT 3, false, ins.* FROM ins WHERE ins.idempotency_key = i.idempotency_key
    UNION ALL
    SELECT 4, false, {TASK_COLUMNS} FROM tasks WHERE tasks.idempotency_key = i.idempotency_key
    ORDER BY rank LIMIT 1
) x
ORDER BY i.n
"""

BY_IDEMPOTENCY_KEY = f"SELECT {TASK_COLUMNS} FROM tasks WHERE idempotency_key = ANY($1::text[])"

GET = f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"


# Claimable: queued, due, and not past its start_by (``now`` is an SQL expression).
def due(now: str) -> str:
    return f"status = 'queued' AND not_before <= {now} AND (start_by IS NULL OR start_by > {now})"


def claim_update(now: str, where: str, task: str = "$1") -> str:
    """A CTE body that moves the due task ``task`` (its id) to running under the lease of
    worker $2, token $3, for $4 seconds, if ``where`` holds too; then ``STARTED`` inserts its
    event. The task keeps its fair tag, for a retry (see ``finish_update``)."""
    return f"""
    UPDATE tasks SET status = 'running', attempts = attempts + 1, worker_id = $2,
        lease_token = $3, lease_expires_at = {now} + make_interval(secs => $4),
        started_at = {now}, progress = 0, progress_message = '', error = NULL,
        waiting_for = NULL
    WHERE id = {task} AND {due(now)} AND {where}
    RETURNING {TASK_COLUMNS}"""


STARTED = f"""{EVENT_INSERT}
    SELECT 'task.started', id, 'running', user_name, batch_id, kind,
           jsonb_build_object('worker_id', worker_id, 'attempt', attempts) FROM t"""

# A queued task past its start_by ends expired (SET clause of an UPDATE of tasks ``t``).
EXPIRE_SET = """status = 'expired', finished_at = now(), waiting_for = NULL,
        error = 'not started by its start_by ('
            || to_char(t.start_by AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || ')'"""
EXPIRED_EVENTS = f"""{EVENT_INSERT}
    SELECT 'task.expired', id, 'expired', user_name, batch_id, kind,
           jsonb_build_object('error', error) FROM x"""

# A resource is limited once it has a limiter row; tasks of one take the limited path.
LIMITED = "EXISTS (SELECT 1 FROM limiters l WHERE l.resource = tasks.resource)"
UNLIMITED = f"(resource IS NULL OR NOT {LIMITED})"

# The hot path: claims a task that needs no permit, or expires it if past its start_by; a
# due task of a limited resource comes back as 'limited' (unchanged), for limits.py. ``me``
# reads start_by by primary key, so the expiry never scans tasks_start_by for the row.
CLAIM = f"""
WITH t AS ({claim_update("now()", UNLIMITED)}
), e AS (
    {STARTED}
), me AS MATERIALIZED (
    SELECT id, start_by FROM tasks WHERE id = $1
), x AS (
    UPDATE tasks t SET {EXPIRE_SET}
    FROM me WHERE t.id = me.id AND t.status = 'queued' AND me.start_by <= now()
    RETURNING {T_COLUMNS}
), xe AS (
    {EXPIRED_EVENTS}
)
SELECT 'claimed' AS outcome, * FROM t
UNION ALL
SELECT 'limited', {TASK_COLUMNS} FROM tasks
WHERE id = $1 AND {due("now()")} AND resource IS NOT NULL AND {LIMITED}
"""

RENEW = """
UPDATE tasks SET lease_expires_at = now() + make_interval(secs => $3)
WHERE id = $1 AND lease_token = $2 AND status = 'running'
RETURNING cancel_requested, lease_expires_at
"""

PROGRESS = f"""
WITH t AS (
    UPDATE tasks SET progress = $3, progress_message = $4
    WHERE id = $1 AND lease_token = $2 AND status = 'running'
    RETURNING id, user_name, batch_id, kind
), e AS (
    {EVENT_INSERT}
    SELECT 'task.progress', id, 'running', user_name, batch_id, kind,
           jsonb_build_object('fraction', $3::float8, 'message', $4::text) FROM t
)
SELECT count(*) FROM t
"""

# FOR KEY SHARE fences the event against a concurrent finish, and gives the transaction its
# xid before the event takes its id, as the feed's hole tracking requires (see feed.py).
ADD_EVENT = f"""
WITH t AS (
    SELECT id, user_name, batch_id, kind FROM tasks
    WHERE id = $1 AND lease_token = $2 AND status = 'running' FOR KEY SHARE
)
{EVENT_INSERT} SELECT $3, id, 'running', user_name, batch_id, kind, $4::jsonb FROM t
RETURNING id
"""

# A preview replaces the task's previous one (migrations/008_previews.sql): the feed reads a
# deleted id it never saw as a hole, forgotten once no transaction can fill it.
ADD_PREVIEW = f"""
WITH t AS (
    SELECT id, user_name, batch_id, kind FROM tasks
    WHERE id = $1 AND lease_token = $2 AND status = 'running' FOR KEY SHARE
), gone AS (
    DELETE FROM events WHERE task_id = (SELECT id FROM t) AND type = 'task.preview'
)
{EVENT_INSERT} SELECT 'task.preview', id, 'running', user_name, batch_id, kind, $3::jsonb FROM t
RETURNING id
"""

# Store.task_events: the newest $2 events of task $1, oldest first (index events_task).
TASK_EVENTS = """
SELECT * FROM (SELECT * FROM events WHERE task_id = $1 ORDER BY id DESC LIMIT $2) newest
ORDER BY id
"""


def finish_update(now: str, where: str) -> str:
    """A CTE body recording every outcome, fenced by the lease token $2 of task $1, if
    ``where`` holds too. $3 is the new status: the finished ones, or 'queued' for a retry after
    $6 seconds (refunding $7 attempts); $4 the result, $5 the error; $11 the run's batch size,
    if $10 (the outcome tells it). A retry due at once is back in line with its fair tag; a
    later one holds the tag until it is due."""
    return f"""
    UPDATE tasks SET status = $3,
        result = CASE WHEN $3 = 'succeeded' THEN $4::jsonb ELSE result END,
        error = CASE WHEN $3 = 'succeeded' THEN error ELSE $5 END,
        progress = CASE $3 WHEN 'succeeded' THEN 1 WHEN 'queued' THEN 0 ELSE progress END,
        progress_message = CASE WHEN $3 = 'queued' THEN '' ELSE progress_message END,
        finished_at = CASE WHEN $3 = 'queued' THEN finished_at ELSE {now} END,
        not_before = CASE WHEN $3 = 'queued' THEN {now} + make_interval(secs => $6)
                          ELSE not_before END,
        attempts = attempts - $7, lease_token = NULL, lease_expires_at = NULL,
        fair_tag = CASE WHEN $3 = 'queued' AND $6 > 0 THEN NULL ELSE fair_tag END,
        held_tag = CASE WHEN $3 = 'queued' AND $6 > 0 THEN coalesce(fair_tag, held_tag)
                        ELSE held_tag END,
        batch_size = CASE WHEN $10::boolean THEN $11::integer ELSE batch_size END
    WHERE id = $1 AND lease_token = $2 AND status = 'running' AND {where}
    RETURNING {TASK_COLUMNS}"""


# $8 is the event type, $9 its data.
FINISHED_EVENT = (
    f"{EVENT_INSERT} SELECT $8, id, status, user_name, batch_id, kind, $9::jsonb FROM t"
)

# A Succeeded or Failed run of t moves the service time of its (queue, kind): the CTE
# ``sampled`` gives one row, to join with t's (so it runs, after t's change).
SAMPLED = """sampled AS (
    SELECT add_service_times(array_agg(queue), array_agg(kind),
                             array_agg(extract(epoch FROM finished_at - started_at)::float8))
    FROM t WHERE status IN ('succeeded', 'failed') AND started_at IS NOT NULL
)"""


def finish(sample: bool) -> str:
    """The hot path: a task that holds no permit, in one statement; one of a limited resource
    comes back as 'limited' (unchanged), for limits.py. Without ``sample``, the caller adds the
    service time (``add_service_times``) later in the same transaction."""
    sampled, joined = (f", {SAMPLED}", " CROSS JOIN sampled") if sample else ("", "")
    return f"""
WITH t AS ({finish_update("now()", UNLIMITED)}
), e AS (
    {FINISHED_EVENT}
){sampled}
SELECT 'finished' AS outcome, t.* FROM t{joined}
UNION ALL
SELECT 'limited', {TASK_COLUMNS} FROM tasks
WHERE id = $1 AND lease_token = $2 AND status = 'running' AND resource IS NOT NULL
    AND {LIMITED}
"""


FINISH, FINISH_UNSAMPLED = finish(True), finish(False)
ADD_SERVICE_TIMES = "SELECT add_service_times($1::text[], $2::text[], $3::float8[])"
SERVICE_TIMES = "SELECT queue, kind, mean_s, deviation_s, samples FROM service_times"

# Queued -> cancelled; running -> cancel_requested; anything else is left alone. Rows are
# locked in id order so that two cancels of one batch cannot deadlock.
_CANCEL = f"""
WITH target AS (
    SELECT id FROM tasks WHERE {{where}}
        AND (status = 'queued' OR (status = 'running' AND NOT cancel_requested))
    ORDER BY id FOR UPDATE
), c AS (
    UPDATE tasks t SET
        status = CASE WHEN t.status = 'queued' THEN 'cancelled' ELSE t.status END,
        finished_at = CASE WHEN t.status = 'queued' THEN now() ELSE t.finished_at END,
        error = CASE WHEN t.status = 'queued' THEN 'cancelled' ELSE t.error END,
        cancel_requested = t.cancel_requested OR t.status = 'running',
        waiting_for = CASE WHEN t.status = 'queued' THEN NULL ELSE t.waiting_for END
    FROM target WHERE t.id = target.id
        AND (t.status = 'queued' OR (t.status = 'running' AND NOT t.cancel_requested))
    RETURNING {T_COLUMNS}
), e AS (
    {EVENT_INSERT}
    SELECT CASE WHEN status = 'cancelled' THEN 'task.cancelled' ELSE 'task.cancel_requested'
           END, id, status, user_name, batch_id, kind, '{{{{}}}}' FROM c
)
"""
CANCEL = _CANCEL.format(where="id = $1") + (
    f"SELECT * FROM c UNION ALL SELECT {TASK_COLUMNS} FROM tasks"
    " WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM c)"
)
CANCEL_BATCH = _CANCEL.format(where="batch_id = $1") + "SELECT count(*) FROM c"

_RETRYABLE = "NOT t.cancel_requested AND t.attempts < t.max_attempts"
# SKIP LOCKED: sweepers running at once take disjoint rows, so each task is requeued once;
# queued tasks past their start_by expire in the same statement (index tasks_start_by).
REQUEUE_EXPIRED = f"""
WITH expired AS (
    SELECT id FROM tasks WHERE status = 'running' AND lease_expires_at < now()
    ORDER BY lease_expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED
), r AS (
    UPDATE tasks t SET
        status = CASE WHEN t.cancel_requested THEN 'cancelled'
                      WHEN t.attempts >= t.max_attempts THEN 'failed' ELSE 'queued' END,
        finished_at = CASE WHEN {_RETRYABLE} THEN t.finished_at ELSE now() END,
        not_before = CASE WHEN {_RETRYABLE} THEN now() ELSE t.not_before END,
        progress = CASE WHEN {_RETRYABLE} THEN 0 ELSE t.progress END,
        progress_message = CASE WHEN {_RETRYABLE} THEN '' ELSE t.progress_message END,
        error = 'lease expired on worker ' || coalesce(t.worker_id, '?')
                || ' (attempt ' || t.attempts || ')',
        worker_id = NULL, lease_token = NULL, lease_expires_at = NULL
    FROM expired WHERE t.id = expired.id AND t.status = 'running'
    RETURNING {T_COLUMNS}
), e AS (
    {EVENT_INSERT}
    SELECT CASE WHEN status = 'queued' THEN 'task.retrying' ELSE 'task.' || status END,
           id, status, user_name, batch_id, kind, jsonb_build_object('error', error) FROM r
), owed AS (
    INSERT INTO outbox (task_id, due_at) SELECT id, now() FROM r WHERE status = 'queued'
    ON CONFLICT (task_id) DO UPDATE SET due_at = EXCLUDED.due_at
), late AS (
    SELECT id FROM tasks
    WHERE status = 'queued' AND start_by IS NOT NULL AND start_by <= now()
    ORDER BY start_by LIMIT 1000 FOR UPDATE SKIP LOCKED
), x AS (
    UPDATE tasks t SET {EXPIRE_SET}
    FROM late WHERE t.id = late.id AND t.status = 'queued'
    RETURNING t.id, t.user_name, t.batch_id, t.kind, t.error
), xe AS (
    {EXPIRED_EVENTS}
)
SELECT * FROM r WHERE status = 'queued'
"""

# Due entries, oldest first; SKIP LOCKED so relays running at once take disjoint rows. Entries
# of tasks no longer queued are dropped, the others held for $2 seconds and returned.
TAKE_OUTBOX = """
WITH due AS (
    SELECT task_id FROM outbox WHERE due_at <= now()
    ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM outbox o USING due LEFT JOIN tasks t ON t.id = due.task_id
    WHERE o.task_id = due.task_id AND t.status IS DISTINCT FROM 'queued'
)
UPDATE outbox o SET due_at = now() + make_interval(secs => $2)
FROM due JOIN tasks t ON t.id = due.task_id
WHERE o.task_id = due.task_id AND t.status = 'queued'
RETURNING t.id, t.queue, t.priority,
    greatest(0, extract(epoch FROM t.not_before - now()))::float8 AS delay_s
"""

CLEAR_OUTBOX = "DELETE FROM outbox WHERE task_id = ANY($1::text[])"

GET_BATCH = """
SELECT b.id, b.user_name, b.created_at, b.size, b.webhook,
    (SELECT jsonb_object_agg(status, n) FROM (
        SELECT status, count(*) AS n FROM tasks WHERE batch_id = b.id GROUP BY status) s
    ) AS counts
FROM batches b WHERE b.id = $1
"""

# $1 user (NULL: all), $2 cursor batch id (NULL: from the newest), $3 limit. Counts per batch
# from the tasks_batch index, as GET_BATCH.
LIST_BATCHES = """
SELECT b.id, b.user_name, b.created_at, b.size, b.webhook,
    (SELECT jsonb_object_agg(status, n) FROM (
        SELECT status, count(*) AS n FROM tasks WHERE batch_id = b.id GROUP BY status) s
    ) AS counts
FROM batches b
WHERE ($1::text IS NULL OR b.user_name = $1)
    AND ($2::text IS NULL
         OR (b.created_at, b.id) < (SELECT created_at, id FROM batches WHERE id = $2))
ORDER BY b.created_at DESC, b.id DESC LIMIT $3
"""

QUEUE_STATS = "SELECT queue, status, count(*) AS n FROM tasks GROUP BY queue, status"

REGISTER_WORKER = """
INSERT INTO workers (id, name, host, pid, queues, concurrency, status, started_at, last_seen,
                     models)
VALUES ($1, $2, $3, $4, $5, $6, 'online', $7, now(), $8)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, host = EXCLUDED.host, pid = EXCLUDED.pid,
    queues = EXCLUDED.queues, concurrency = EXCLUDED.concurrency, status = 'online',
    started_at = EXCLUDED.started_at, last_seen = now(), running = '[]', succeeded = 0,
    failed = 0, reason = NULL, models = EXCLUDED.models
"""

# $5: why the worker is degraded, or NULL when it is online; $6 the models it holds warm.
HEARTBEAT_WORKER = """
UPDATE workers SET last_seen = now(), running = $2, succeeded = $3, failed = $4,
    status = CASE WHEN $5::text IS NULL THEN 'online' ELSE 'degraded' END, reason = $5,
    models = $6
WHERE id = $1
"""

STOP_WORKER = """
UPDATE workers SET status = 'stopped', running = '[]', reason = NULL, models = '[]',
    last_seen = now()
WHERE id = $1
"""

LIST_WORKERS = "SELECT * FROM workers ORDER BY started_at DESC"

# Leases of silent workers expire now, so the next requeue_expired recovers their tasks.
MARK_OFFLINE = """
WITH w AS (
    UPDATE workers SET status = 'offline', running = '[]', reason = NULL, models = '[]'
    WHERE status IN ('online', 'degraded') AND last_seen < now() - make_interval(secs => $1)
    RETURNING id
), t AS (
    UPDATE tasks SET lease_expires_at = now() - interval '1 millisecond'
    WHERE status = 'running' AND worker_id IN (SELECT id FROM w)
)
SELECT id FROM w
"""

# PURGE_TASKS, which leaves tombstones: expiry.py.
PURGE_BATCHES = """
DELETE FROM batches b WHERE created_at < now() - make_interval(secs => $1)
    AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.batch_id = b.id)
"""
PURGE_EVENTS = "DELETE FROM events WHERE at < now() - make_interval(secs => $1)"
PURGE_WORKERS = """
DELETE FROM workers WHERE status IN ('offline', 'stopped')
    AND last_seen < now() - make_interval(secs => $1)
"""
