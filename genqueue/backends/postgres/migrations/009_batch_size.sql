-- The size of the batch a task's last run was part of (Task.batch_size): a worker runs tasks
-- of a batched kind together in one call. NULL when that run was not batched or the task has
-- not run; finish sets it from Succeeded, Failed and Requeue and leaves it for the others.
ALTER TABLE tasks ADD COLUMN batch_size integer;
