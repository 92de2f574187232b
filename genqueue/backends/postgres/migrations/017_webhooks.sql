-- Webhooks (genqueue/webhooks; backends/postgres/webhooks.py): the targets of tasks and
-- batches, the deliveries owed to them, and where the pumps resume the event feed.
ALTER TABLE tasks ADD COLUMN webhook jsonb;    -- WebhookTarget {url, events}
ALTER TABLE batches ADD COLUMN webhook jsonb;

-- One row per message owed to a webhook, id = its webhook-id. next_at: when a sender may
-- take it (a sender's hold moves it on); NULL once final.
CREATE TABLE webhook_deliveries (
    id         text PRIMARY KEY,
    task_id    text,                              -- NULL for batch.finished
    batch_id   text,
    url        text NOT NULL,
    event      text NOT NULL,
    body       text NOT NULL,                     -- the exact bytes every attempt sends
    state      text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'refused')),
    attempts   integer NOT NULL DEFAULT 0,
    next_at    timestamptz,
    created_at timestamptz NOT NULL,
    log        jsonb NOT NULL DEFAULT '[]'        -- attempts, oldest first
);
CREATE INDEX webhook_due ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX webhook_task ON webhook_deliveries (task_id, created_at) WHERE task_id IS NOT NULL;
CREATE INDEX webhook_batch ON webhook_deliveries (batch_id, created_at) WHERE batch_id IS NOT NULL;
CREATE INDEX webhook_created ON webhook_deliveries (created_at);

CREATE TABLE webhook_cursor (
    id       integer PRIMARY KEY CHECK (id = 1),
    event_id text NOT NULL
);
