-- One task's events in order (Store.task_events: a task page's history, TASK_EVENTS in
-- queries.py). The log holds minutes of events, so building it inside the migration's
-- transaction is quick.
CREATE INDEX events_task ON events (task_id, id);
