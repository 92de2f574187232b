-- A task's live previews (task.preview events, up to ~33 KB of JSON each, a few a second):
-- Store.add_event deletes the task's previous one as it inserts the next (ADD_PREVIEW in
-- queries.py), so the event log keeps only the latest picture of each task; this index
-- finds it without scanning the log.
CREATE INDEX events_preview ON events (task_id) WHERE type = 'task.preview';
