-- Warm-model affinity: the model a task's run loads (Task.model, kept as submitted; NULL:
-- any worker alike), and the models a worker holds warm (WorkerInfo.models, a JSON list like
-- queues and running, replaced by every heartbeat).
ALTER TABLE tasks ADD COLUMN model text;
ALTER TABLE workers ADD COLUMN models jsonb NOT NULL DEFAULT '[]';
