-- Fair order inside a queue (Store.claim_next, Store.position; SQL in fair.py and tags.py)
-- and service times (Store.service_times).

-- weight: the task's user's share (NewTask.weight). fair_tag: the start tag of a task in its
-- queue's line (start-time fair queuing); NULL while it is not in line: submitted for later
-- and not due yet, or requeued for later (then held_tag keeps its tag until it is due). A
-- task keeps fair_tag while it runs, so a retry due at once is back in line at its place.
ALTER TABLE tasks
    ADD COLUMN weight   double precision NOT NULL DEFAULT 1,
    ADD COLUMN fair_tag bigint,
    ADD COLUMN held_tag bigint;

-- Tasks queued before fair order: the due ones join the line at tag 0 (in age order, ahead of
-- newcomers); the others join when due, as new delayed tasks do.
UPDATE tasks SET fair_tag = 0 WHERE status = 'queued' AND not_before <= now();

-- The last finish F of every user per (queue, priority); user_key is the user, '' for None.
-- A submit moves its users' rows (INSERT ... ON CONFLICT DO UPDATE, in key order); claims
-- never write here.
CREATE TABLE fair_users (
    queue    text NOT NULL,
    priority integer NOT NULL,
    user_key text NOT NULL,
    finish   bigint NOT NULL,
    PRIMARY KEY (queue, priority, user_key)
);
-- The largest F of a (queue, priority): the floor when none of its tasks is in line.
CREATE INDEX fair_users_finish ON fair_users (queue, priority, finish);

-- The line in fair order, in two parts: tasks a claim may take at once, and parked ones
-- (waiting for a permit), also by resource. Position counts both; the floor V is the smaller
-- of their first tags for a (queue, priority).
DROP INDEX tasks_queued;
CREATE INDEX tasks_next ON tasks (queue, priority DESC, fair_tag, seq)
    WHERE status = 'queued' AND fair_tag IS NOT NULL AND waiting_for IS NULL;
CREATE INDEX tasks_parked ON tasks (queue, priority DESC, fair_tag, seq)
    WHERE status = 'queued' AND fair_tag IS NOT NULL AND waiting_for IS NOT NULL;
CREATE INDEX tasks_parked_for ON tasks (queue, waiting_for, priority DESC, fair_tag, seq)
    WHERE status = 'queued' AND fair_tag IS NOT NULL AND waiting_for IS NOT NULL;
-- Queued tasks not in line, by due time: a claim probes it for the ones due now.
CREATE INDEX tasks_scheduled ON tasks (queue, not_before)
    WHERE status = 'queued' AND fair_tag IS NULL;

-- Reserve the tags of `total` units for a user joining the line of (q, p) now, and return the
-- first: S = max(V, F[user]), F[user] = S + total. V, the floor, is the smallest tag in line
-- (tasks_next, tasks_parked), or the largest F there when the line is empty (0 if none). The
-- upsert's row lock serialises two reservations for one user. Callers reserve for several
-- users in (queue, priority, user_key) order, so they cannot deadlock.
CREATE FUNCTION fair_reserve(q text, p integer, u text, total bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
    f bigint;
BEGIN
    v := least(
        (SELECT fair_tag FROM tasks WHERE queue = q AND priority = p AND status = 'queued'
             AND fair_tag IS NOT NULL AND waiting_for IS NULL ORDER BY fair_tag LIMIT 1),
        (SELECT fair_tag FROM tasks WHERE queue = q AND priority = p AND status = 'queued'
             AND fair_tag IS NOT NULL AND waiting_for IS NOT NULL ORDER BY fair_tag LIMIT 1));
    IF v IS NULL THEN
        v := coalesce((SELECT max(finish) FROM fair_users WHERE queue = q AND priority = p), 0);
    END IF;
    INSERT INTO fair_users AS fu (queue, priority, user_key, finish) VALUES (q, p, u, v + total)
    ON CONFLICT (queue, priority, user_key) DO UPDATE SET finish = greatest(fu.finish, v) + total
    RETURNING fu.finish INTO f;
    RETURN f - total;
END $$;

-- Moving averages of run lengths per (queue, kind), moved by every Succeeded or Failed finish.
CREATE TABLE service_times (
    queue       text NOT NULL,
    kind        text NOT NULL,
    mean_s      double precision NOT NULL,
    deviation_s double precision NOT NULL,
    samples     bigint NOT NULL,
    PRIMARY KEY (queue, kind)
);

-- Add runs of xs[i] seconds to (queues[i], kinds[i]), one after another, rows taken in
-- (queue, kind) order so that transactions adding several cannot deadlock; returns how many.
-- The rule of Store.finish: the first sample sets mean x and deviation 0; then deviation +=
-- 0.2 * (|x - mean| - deviation) and mean += 0.2 * (x - mean), with the old mean in both.
CREATE FUNCTION add_service_times(queues text[], kinds text[], xs double precision[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    s record;
    n integer := 0;
BEGIN
    FOR s IN SELECT * FROM unnest(queues, kinds, xs) WITH ORDINALITY AS u(queue, kind, x, i)
             ORDER BY u.queue, u.kind, u.i
    LOOP
        INSERT INTO service_times AS st (queue, kind, mean_s, deviation_s, samples)
        VALUES (s.queue, s.kind, s.x, 0, 1)
        ON CONFLICT (queue, kind) DO UPDATE SET
            deviation_s = st.deviation_s + 0.2 * (abs(EXCLUDED.mean_s - st.mean_s) - st.deviation_s),
            mean_s = st.mean_s + 0.2 * (EXCLUDED.mean_s - st.mean_s),
            samples = st.samples + 1;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
