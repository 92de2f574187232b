-- A worker that cannot reach a backend keeps beating as status 'degraded' with the reason
-- here (NULL in every other status); degraded workers are alive for mark_offline and purge.
ALTER TABLE workers ADD COLUMN reason text;
