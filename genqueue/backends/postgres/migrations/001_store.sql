-- genqueue store on PostgreSQL. Runs with search_path set to the genqueue schema.
-- Times are timestamptz from the server clock (now()); every change that spans rows is one
-- statement or one transaction, and inserts its events in that same transaction.

CREATE TABLE tasks (
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,  -- age order, list cursor
    id               text PRIMARY KEY,
    kind             text NOT NULL,
    queue            text NOT NULL,
    payload          jsonb NOT NULL,
    user_name        text,                                -- Task.user ("user" is reserved)
    priority         integer NOT NULL DEFAULT 0,
    batch_id         text,
    idempotency_key  text UNIQUE,
    status           text NOT NULL,                       -- queued running succeeded failed cancelled
    progress         double precision NOT NULL DEFAULT 0,
    progress_message text NOT NULL DEFAULT '',
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 1,
    result           jsonb,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    not_before       timestamptz NOT NULL DEFAULT now(),  -- retry backoff: not claimable before
    worker_id        text,
    lease_token      text,                                -- fences renew, progress, finish
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false
);
-- Position: queued tasks ahead in the same queue (priority desc, then age); only queued rows
-- are indexed, so the index stays as small as the backlog.
CREATE INDEX tasks_queued ON tasks (queue, priority DESC, seq) WHERE status = 'queued';
-- Lease recovery scans running tasks by expiry.
CREATE INDEX tasks_running ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX tasks_batch ON tasks (batch_id, status) WHERE batch_id IS NOT NULL;
CREATE INDEX tasks_user ON tasks (user_name, seq);
CREATE INDEX tasks_status ON tasks (status, seq);

CREATE TABLE batches (
    id         text PRIMARY KEY,
    user_name  text,
    created_at timestamptz NOT NULL,
    size       integer NOT NULL
);
CREATE INDEX batches_created ON batches (created_at);

-- The event log: one row per event, never updated; feeds Store.watch() (SSE, waiters) and is
-- trimmed by purge. Ids come from a sequence, so they are allocation order, not commit
-- order: the reader (feed.py) waits for the gaps of transactions still in flight.
CREATE TABLE events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    type      text NOT NULL,
    task_id   text NOT NULL,
    status    text NOT NULL,
    user_name text,
    batch_id  text,
    kind      text,
    data      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_at ON events (at);

CREATE TABLE workers (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    host        text NOT NULL,
    pid         integer NOT NULL,
    queues      jsonb NOT NULL,                           -- list of queue names
    concurrency integer NOT NULL,
    status      text NOT NULL,                            -- online offline stopped
    started_at  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    running     jsonb NOT NULL DEFAULT '[]',              -- task ids
    succeeded   integer NOT NULL DEFAULT 0,
    failed      integer NOT NULL DEFAULT 0
);

-- NOTIFY "<schema>.<table>" once per inserting statement (delivered at commit; identical
-- notifications of one transaction fold into one), so listeners wake without polling.
CREATE FUNCTION notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, '');
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_insert();
