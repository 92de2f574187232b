-- Result expiry and the result cache (genqueue/expiry.py, genqueue/result_cache.py;
-- backends/postgres/expiry.py).
-- The digest of a deterministic kind's payload: an identical submission of the same user is
-- answered with the newest succeeded task that has it.
ALTER TABLE tasks ADD COLUMN cache_key text;
CREATE INDEX tasks_cache ON tasks (cache_key, finished_at)
    WHERE status = 'succeeded' AND cache_key IS NOT NULL;

-- What Store.purge leaves of each purged task for kept_s, so that its owner's reads answer
-- 410 Gone rather than 404; forget_at is when a later purge drops it.
CREATE TABLE tombstones (
    task_id    text PRIMARY KEY,
    user_name  text,
    expired_at timestamptz NOT NULL,
    forget_at  timestamptz NOT NULL
);
CREATE INDEX tombstones_forget ON tombstones (forget_at);
