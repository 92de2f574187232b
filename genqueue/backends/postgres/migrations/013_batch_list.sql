-- Store.list_batches: newest first, all or one user's (LIST_BATCHES in queries.py).
DROP INDEX batches_created;
CREATE INDEX batches_created ON batches (created_at DESC, id DESC);
CREATE INDEX batches_user ON batches (user_name, created_at DESC, id DESC);
