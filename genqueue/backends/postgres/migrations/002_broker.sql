-- genqueue broker on PostgreSQL: one row per deliverable message.
-- A consumer takes due rows with SELECT ... FOR UPDATE SKIP LOCKED (priority desc, then
-- publish order) and stamps them with its receipt and a visibility deadline (locked_until);
-- a live consumer keeps pushing the deadline forward, a dead one lets it lapse and the row is
-- taken again. Ack deletes the row, nack clears the receipt; both match on the receipt, so a
-- stale consumer changes nothing.

CREATE TABLE deliveries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- publish order
    queue        text NOT NULL,
    task_id      text NOT NULL,
    priority     integer NOT NULL DEFAULT 0,
    available_at timestamptz NOT NULL DEFAULT now(),              -- delay_s / nack delay
    receipt      text,
    locked_until timestamptz
);
CREATE INDEX deliveries_next ON deliveries (queue, priority DESC, id);

CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notify_insert();
