-- genqueue on SQLite: store and broker share one file (WAL). Times are float epoch seconds.
-- Every change that spans rows runs in one BEGIN IMMEDIATE transaction (see store.py).

CREATE TABLE IF NOT EXISTS tasks (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,  -- age order and list cursor
    id               TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    payload          TEXT    NOT NULL,                   -- JSON
    user             TEXT,
    priority         INTEGER NOT NULL DEFAULT 0,
    batch_id         TEXT,
    idempotency_key  TEXT    UNIQUE,
    status           TEXT    NOT NULL,
    progress         REAL    NOT NULL DEFAULT 0,
    progress_message TEXT    NOT NULL DEFAULT '',
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 1,
    result           TEXT,                               -- JSON
    error            TEXT,
    created_at       REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    not_before       REAL    NOT NULL,                   -- retry backoff: not claimable before
    worker_id        TEXT,
    lease_token      TEXT,                               -- fences renew/progress/finish
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    resource         TEXT,                               -- its permit's limiter (db.py ADDED)
    waiting_for      TEXT,                               -- parked for a permit of this resource
    start_by         REAL,                               -- not started by then: expired
    cancel_after_s   REAL,                               -- run deadline after start
    weight           REAL    NOT NULL DEFAULT 1,         -- its user's fair share weight
    fair_tag         INTEGER,                            -- place in the fair order (fair.py)
    ready            INTEGER NOT NULL DEFAULT 0,         -- 1: in line (due, tagged)
    batch_size       INTEGER,                            -- size of its last run's batch
    model            TEXT                                -- the model its run loads (db.py ADDED)
);
-- Position: count of queued tasks ahead in the same queue (priority desc, then age).
CREATE INDEX IF NOT EXISTS tasks_order ON tasks (queue, status, priority DESC, seq);
CREATE INDEX IF NOT EXISTS tasks_lease ON tasks (status, lease_expires_at);
CREATE INDEX IF NOT EXISTS tasks_user ON tasks (user, seq);
CREATE INDEX IF NOT EXISTS tasks_batch ON tasks (batch_id, status);
CREATE INDEX IF NOT EXISTS tasks_finished ON tasks (finished_at);

-- The outbox (Store.take_outbox): tasks stored as queued whose message may not be published
-- yet, written in the transaction that queues the task; due_at is when a relay may publish it.
CREATE TABLE IF NOT EXISTS outbox (
    task_id TEXT PRIMARY KEY,
    due_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (due_at);

-- Shared limits of upstream resources: the state is genqueue.limiter's (dump_state JSON);
-- permits are the running tasks of the resource with a live lease (index in db.py).
CREATE TABLE IF NOT EXISTS limiters (
    resource TEXT PRIMARY KEY,
    state    TEXT NOT NULL
);

-- Fair share: each user's last finish tag per queue and priority (fair.py).
CREATE TABLE IF NOT EXISTS fair_users (
    queue    TEXT    NOT NULL,
    priority INTEGER NOT NULL,
    user_key TEXT    NOT NULL,
    finish   INTEGER NOT NULL,
    PRIMARY KEY (queue, priority, user_key)
);
CREATE INDEX IF NOT EXISTS fair_users_finish ON fair_users (queue, priority, finish);

-- Moving averages of run lengths per queue and kind (Store.service_times).
CREATE TABLE IF NOT EXISTS service_times (
    queue       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    mean_s      REAL    NOT NULL,
    deviation_s REAL    NOT NULL,
    samples     INTEGER NOT NULL,
    PRIMARY KEY (queue, kind)
);

CREATE TABLE IF NOT EXISTS batches (
    id         TEXT PRIMARY KEY,
    user       TEXT,
    created_at REAL    NOT NULL,
    size       INTEGER NOT NULL
);
-- Store.list_batches: newest first, all or one user's.
CREATE INDEX IF NOT EXISTS batches_created ON batches (created_at, id);
CREATE INDEX IF NOT EXISTS batches_user ON batches (user, created_at, id);

-- Live events for SSE and waiters; kept briefly (the store is the history, not this).
CREATE TABLE IF NOT EXISTS events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,          -- commit order
    at       REAL NOT NULL,
    type     TEXT NOT NULL,
    task_id  TEXT NOT NULL,
    status   TEXT NOT NULL,
    user     TEXT,
    batch_id TEXT,
    kind     TEXT,
    data     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
-- One task's events in order (Store.task_events: a task page's history).
CREATE INDEX IF NOT EXISTS events_task ON events (task_id, id);
-- A task's previews (task.preview, up to ~33 KB each): each replaces the one before.
CREATE INDEX IF NOT EXISTS events_preview ON events (task_id) WHERE type = 'task.preview';

CREATE TABLE IF NOT EXISTS workers (
    id         TEXT PRIMARY KEY,
    name       TEXT    NOT NULL,
    host       TEXT    NOT NULL,
    pid        INTEGER NOT NULL,
    queues     TEXT    NOT NULL,                         -- JSON list
    concurrency INTEGER NOT NULL,
    status     TEXT    NOT NULL,
    started_at REAL    NOT NULL,
    last_seen  REAL    NOT NULL,
    running    TEXT    NOT NULL DEFAULT '[]',            -- JSON list of task ids
    succeeded  INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    reason     TEXT,                                     -- why it is degraded (db.py ADDED)
    models     TEXT    NOT NULL DEFAULT '[]'             -- JSON list: models held warm (ADDED)
);

-- The broker: one row per deliverable message. A fetched row carries the receipt of the
-- fetch and is invisible until locked_until; ack deletes it, nack makes it visible again.
CREATE TABLE IF NOT EXISTS deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue        TEXT    NOT NULL,
    task_id      TEXT    NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    available_at REAL    NOT NULL,
    receipt      TEXT,
    locked_until REAL
);
CREATE INDEX IF NOT EXISTS deliveries_next ON deliveries (queue, priority DESC, id);

-- API keys (Store.create_key ...): the public record and the SHA-256 of the key, never the key.
CREATE TABLE IF NOT EXISTS api_keys (
    id         TEXT PRIMARY KEY,                        -- the key's public prefix
    key_hash   TEXT NOT NULL UNIQUE,
    user       TEXT NOT NULL,
    role       TEXT NOT NULL,                           -- user, operator, admin
    label      TEXT,
    created_at REAL NOT NULL,
    revoked_at REAL,
    tasks_per_minute INTEGER,                           -- quotas (quotas.py; db.py ADDED)
    in_flight  INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_created ON api_keys (created_at DESC, id DESC);

-- Submit quotas (quotas.py): each key's count in its current fixed window, and the
-- unfinished tasks of each user, counted by index at most a limit deep.
CREATE TABLE IF NOT EXISTS quota_windows (
    key_id TEXT PRIMARY KEY,
    window INTEGER NOT NULL,                            -- floor(epoch / window_s)
    used   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_unfinished ON tasks (user)
    WHERE status IN ('queued', 'running');

-- Webhook deliveries (genqueue/webhooks; backends/sqlite/webhooks.py): one row per message
-- owed to a webhook, id = its webhook-id; next_at is when a sender may take it (a sender's
-- hold moves it on), NULL once final. tasks.webhook and batches.webhook hold the targets
-- (JSON; db.py ADDED).
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id         TEXT PRIMARY KEY,
    task_id    TEXT,                                    -- NULL for batch.finished
    batch_id   TEXT,
    url        TEXT    NOT NULL,
    event      TEXT    NOT NULL,
    body       TEXT    NOT NULL,                        -- the exact bytes every attempt sends
    state      TEXT    NOT NULL,                        -- pending delivered failed refused
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    REAL,
    created_at REAL    NOT NULL,
    log        TEXT    NOT NULL DEFAULT '[]'            -- JSON list of attempts
);
CREATE INDEX IF NOT EXISTS webhook_due ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_task ON webhook_deliveries (task_id, created_at);
CREATE INDEX IF NOT EXISTS webhook_batch ON webhook_deliveries (batch_id, created_at);
CREATE INDEX IF NOT EXISTS webhook_created ON webhook_deliveries (created_at);
-- The last event turned into deliveries: where the webhook pumps resume Store.watch.
CREATE TABLE IF NOT EXISTS webhook_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    event_id TEXT NOT NULL
);

-- Result expiry (expiry.py): what Store.purge leaves of each purged task for kept_s, so its
-- owner gets 410 Gone rather than 404; forget_at is when purge drops it. The result cache
-- looks tasks up by tasks.cache_key (db.py ADDED, index tasks_cache).
CREATE TABLE IF NOT EXISTS tombstones (
    task_id    TEXT PRIMARY KEY,
    user       TEXT,
    expired_at REAL NOT NULL,
    forget_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tombstones_forget ON tombstones (forget_at);
