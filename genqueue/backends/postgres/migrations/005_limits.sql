-- Shared concurrency limits per upstream resource, and delayed or deadline tasks.
-- tasks.status gains 'expired' (queued past its start_by; terminal): status is plain text with
-- no CHECK, so nothing else changes for it.

-- resource: the upstream a run takes a permit of (NULL: none). waiting_for: parked by a claim
-- that found no permit, until a claim admits it (only meaningful while queued). start_by: not
-- started by then -> expired. cancel_after_s: kept for the worker (a run's time budget).
ALTER TABLE tasks
    ADD COLUMN resource       text,
    ADD COLUMN waiting_for    text,
    ADD COLUMN start_by       timestamptz,
    ADD COLUMN cancel_after_s double precision;

-- One AIMD limiter per configured resource (genqueue/limiter.py): its whole state, history
-- included, as limiter.dump_state writes it. Claims and finishes of the resource's tasks take
-- the row FOR UPDATE, so the permit count and the state change under one lock. A resource
-- with no row is not limited. Rows are never deleted.
CREATE TABLE limiters (
    resource text PRIMARY KEY,
    state    jsonb NOT NULL
);

-- Permits held: running tasks of a resource with a live lease.
CREATE INDEX tasks_resource_running ON tasks (resource, lease_expires_at)
    WHERE status = 'running' AND resource IS NOT NULL;
-- Parked tasks of a resource in queue order (priority desc, then age), for waking.
CREATE INDEX tasks_waiting ON tasks (waiting_for, priority DESC, seq)
    WHERE status = 'queued' AND waiting_for IS NOT NULL;
-- The sweep of queued tasks past their start_by.
CREATE INDEX tasks_start_by ON tasks (start_by)
    WHERE status = 'queued' AND start_by IS NOT NULL;
