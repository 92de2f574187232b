-- The outbox (Store.take_outbox): tasks stored as queued whose message may not be published
-- yet, inserted by the statement that queues the task (SUBMIT, REQUEUE_EXPIRED); due_at is
-- when a relay may publish it. A relay takes due rows FOR UPDATE SKIP LOCKED and holds them.
CREATE TABLE outbox (
    task_id text PRIMARY KEY,
    due_at  timestamptz NOT NULL
);
CREATE INDEX outbox_due ON outbox (due_at);
