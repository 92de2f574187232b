-- A queued task cancelled hands its share back to its user (research/scheduling.md 0.1):
-- F = max(V, F - increment), so a user who cancels a batch and resubmits does not queue
-- behind the rounds the batch would have had. A row trigger, so that it runs after the
-- statement has taken the task out of line (V is then the floor without it) and on every
-- way a task is cancelled (CANCEL, CANCEL_BATCH in queries.py).

-- The floor V of (q, p): the smallest tag in line, or the largest F when the line is empty.
CREATE FUNCTION fair_floor(q text, p integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    v := least(
        (SELECT fair_tag FROM tasks WHERE queue = q AND priority = p AND status = 'queued'
             AND fair_tag IS NOT NULL AND waiting_for IS NULL ORDER BY fair_tag LIMIT 1),
        (SELECT fair_tag FROM tasks WHERE queue = q AND priority = p AND status = 'queued'
             AND fair_tag IS NOT NULL AND waiting_for IS NOT NULL ORDER BY fair_tag LIMIT 1));
    IF v IS NULL THEN
        v := coalesce((SELECT max(finish) FROM fair_users WHERE queue = q AND priority = p), 0);
    END IF;
    RETURN v;
END $$;

CREATE OR REPLACE FUNCTION fair_reserve(q text, p integer, u text, total bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v bigint := fair_floor(q, p);
    f bigint;
BEGIN
    INSERT INTO fair_users AS fu (queue, priority, user_key, finish) VALUES (q, p, u, v + total)
    ON CONFLICT (queue, priority, user_key) DO UPDATE SET finish = greatest(fu.finish, v) + total
    RETURNING fu.finish INTO f;
    RETURN f - total;
END $$;

CREATE FUNCTION fair_give_back() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE fair_users SET
        finish = greatest(fair_floor(OLD.queue, OLD.priority),
                          finish - greatest(1, round(1000 / OLD.weight))::bigint)
    WHERE queue = OLD.queue AND priority = OLD.priority
        AND user_key = coalesce(OLD.user_name, '');
    RETURN NULL;
END $$;

-- A tag is held in fair_tag while in line, in held_tag while requeued for later.
CREATE TRIGGER fair_cancelled AFTER UPDATE OF status ON tasks
FOR EACH ROW WHEN (OLD.status = 'queued' AND NEW.status = 'cancelled'
    AND coalesce(OLD.fair_tag, OLD.held_tag) IS NOT NULL)
EXECUTE FUNCTION fair_give_back();
