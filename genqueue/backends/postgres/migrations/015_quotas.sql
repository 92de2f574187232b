-- Submit quotas (genqueue/api/quotas.py, backends/postgres/quotas.py).
-- A key's own limits; NULL: the deployment's default (role user), 0: unlimited.
ALTER TABLE api_keys ADD COLUMN tasks_per_minute integer CHECK (tasks_per_minute >= 0);
ALTER TABLE api_keys ADD COLUMN in_flight integer CHECK (in_flight >= 0);
-- Each key's count in its current fixed window (window = floor(epoch / window_s)).
CREATE TABLE quota_windows (
    key_id text PRIMARY KEY,
    window_no bigint NOT NULL,
    used integer NOT NULL
);
-- Unfinished tasks per user and queued tasks per queue, counted at most a limit deep.
CREATE INDEX tasks_unfinished ON tasks (user_name) WHERE status IN ('queued', 'running');
CREATE INDEX tasks_queued_in ON tasks (queue) WHERE status = 'queued';
