-- Counts of the line by tag range, so that Store.position is a few small sums, not a count of
-- every task ahead (SQL in fair.py: POSITION). A task in line (queued, fair_tag set) falls in
-- the fine bucket fair_tag >> 10 (about one task per user) and the coarse bucket
-- fair_tag >> 20 (1024 fine ones). Position = the coarse buckets ahead + the fine buckets
-- ahead inside its coarse one + the tasks ahead inside its fine one, counted on the index.
--
-- Claims all leave the head bucket, so counting in place would make its row a lock every
-- claim waits on. Instead triggers append +1/-1 rows to rank_delta (no row is ever updated
-- there), rank_rollup() folds them into the buckets (one caller at a time; each store runs
-- it every second), and position adds the deltas not folded yet: exact in one snapshot.

CREATE TABLE rank_fine (
    queue    text NOT NULL,
    priority integer NOT NULL,
    fine     bigint NOT NULL,
    n        bigint NOT NULL,
    PRIMARY KEY (queue, priority, fine)
);
CREATE INDEX rank_fine_empty ON rank_fine (queue) WHERE n = 0;

CREATE TABLE rank_coarse (
    queue    text NOT NULL,
    priority integer NOT NULL,
    coarse   bigint NOT NULL,
    n        bigint NOT NULL,
    PRIMARY KEY (queue, priority, coarse)
);
CREATE INDEX rank_coarse_empty ON rank_coarse (queue) WHERE n = 0;

CREATE TABLE rank_delta (
    queue    text NOT NULL,
    priority integer NOT NULL,
    fine     bigint NOT NULL,
    n        bigint NOT NULL
);
-- No index: position reads a second of deltas at most, and every claim writes one.

-- A row joining or leaving the line, or moving in it (a retry with its tag, a new priority).
CREATE FUNCTION rank_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status = 'queued' AND OLD.fair_tag IS NOT NULL THEN
        INSERT INTO rank_delta VALUES (OLD.queue, OLD.priority, OLD.fair_tag >> 10, -1);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'queued' AND NEW.fair_tag IS NOT NULL THEN
        INSERT INTO rank_delta VALUES (NEW.queue, NEW.priority, NEW.fair_tag >> 10, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER rank_updated AFTER UPDATE OF status, fair_tag, priority, queue ON tasks
FOR EACH ROW WHEN (
    (OLD.status = 'queued' AND OLD.fair_tag IS NOT NULL)
        IS DISTINCT FROM (NEW.status = 'queued' AND NEW.fair_tag IS NOT NULL)
    OR (NEW.status = 'queued' AND NEW.fair_tag IS NOT NULL
        AND (OLD.queue, OLD.priority, OLD.fair_tag >> 10)
            IS DISTINCT FROM (NEW.queue, NEW.priority, NEW.fair_tag >> 10)))
EXECUTE FUNCTION rank_moved();

CREATE TRIGGER rank_deleted AFTER DELETE ON tasks
FOR EACH ROW WHEN (OLD.status = 'queued' AND OLD.fair_tag IS NOT NULL)
EXECUTE FUNCTION rank_moved();

-- A submit inserts thousands of rows in one statement: one delta row per bucket it fills.
CREATE FUNCTION rank_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rank_delta
    SELECT queue, priority, fair_tag >> 10, count(*) FROM inserted
    WHERE status = 'queued' AND fair_tag IS NOT NULL
    GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;

CREATE TRIGGER rank_inserted AFTER INSERT ON tasks
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION rank_inserted();

-- Fold the deltas committed so far into the buckets; returns how many delta rows it folded,
-- or NULL when another call is folding now (it will fold these too, or the next one will).
CREATE FUNCTION rank_rollup() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('genqueue.rank_rollup:' || current_schema())) THEN
        RETURN NULL;
    END IF;
    WITH gone AS (
        DELETE FROM rank_delta RETURNING queue, priority, fine, n
    ), fine AS (
        SELECT queue, priority, fine, sum(n) AS n FROM gone GROUP BY 1, 2, 3 HAVING sum(n) <> 0
    ), f AS (
        INSERT INTO rank_fine AS r SELECT * FROM fine
        ON CONFLICT (queue, priority, fine) DO UPDATE SET n = r.n + EXCLUDED.n
    ), c AS (
        INSERT INTO rank_coarse AS r
        SELECT queue, priority, fine >> 10, sum(n) FROM fine GROUP BY 1, 2, 3 HAVING sum(n) <> 0
        ON CONFLICT (queue, priority, coarse) DO UPDATE SET n = r.n + EXCLUDED.n
    )
    SELECT count(*) INTO folded FROM gone;
    DELETE FROM rank_fine WHERE n = 0;
    DELETE FROM rank_coarse WHERE n = 0;
    RETURN folded;
END $$;

-- The line as it stands now.
INSERT INTO rank_delta
SELECT queue, priority, fair_tag >> 10, count(*) FROM tasks
WHERE status = 'queued' AND fair_tag IS NOT NULL
GROUP BY 1, 2, 3;
SELECT rank_rollup();
