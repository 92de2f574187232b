-- ARGV: prefix, batch JSON or '', tasks JSON list, outbox grace in seconds. All or none:
-- validated before any write. Every created task gets an outbox entry due after the grace.
-- Times (not_before, start_by) come as epoch seconds in text, kept as given. A task due now
-- joins its queue's fair order (fair.lua), tagged in input order; a later one waits for its
-- time. fair_inc: its tag increment, max(1, round(1000 / weight)), computed by Python.
local batch = ARGV[2] ~= '' and cjson.decode(ARGV[2]) or nil
local tasks = cjson.decode(ARGV[3])
local out = {}
local t_now = now()
if batch then
  redis.call('HSET', P .. ':batch:' .. batch.id, 'id', batch.id, 'user', batch.user or '',
    'created_at', stamp(batch.created_at), 'size', batch.size)
  if batch.webhook then redis.call('HSET', P .. ':batch:' .. batch.id, 'webhook', batch.webhook) end
  redis.call('ZADD', P .. ':batches', batch.created_at, batch.id)
  redis.call('ZADD', P .. ':batches:user:' .. (batch.user or ''), batch.created_at, batch.id)
end
for i, t in ipairs(tasks) do
  local existing = false
  if t.idempotency_key then
    existing = redis.call('GET', P .. ':idem:' .. t.idempotency_key)
  end
  if existing then
    out[i] = {existing, 0}
  else
    local seq = redis.call('INCR', P .. ':seq')
    local key = tkey(t.id)
    redis.call('HSET', key, 'id', t.id, 'seq', seq, 'kind', t.kind, 'queue', t.queue,
      'payload', t.payload, 'priority', t.priority, 'attempts', 0,
      'max_attempts', t.max_attempts, 'created_at', stamp(t_now),
      'not_before', t.not_before or stamp(t_now), 'progress', 0, 'progress_message', '',
      'cancel_requested', 0)
    for _, name in ipairs({'user', 'batch_id', 'resource', 'start_by', 'cancel_after_s',
        'weight', 'fair_inc', 'model', 'webhook', 'cache_key'}) do
      if t[name] then redis.call('HSET', key, name, t[name]) end
    end
    if t.cache_key then  -- the result cache's index (Store.cached; purge.lua removes it)
      redis.call('ZADD', P .. ':cache:' .. t.cache_key .. ':' .. (t.user or ''), seq, t.id)
    end
    if t.idempotency_key then
      redis.call('HSET', key, 'idempotency_key', t.idempotency_key)
      redis.call('SET', P .. ':idem:' .. t.idempotency_key, t.id)
    end
    redis.call('ZADD', P .. ':tasks', seq, t.id)
    for _, name in ipairs({'user', 'batch_id', 'kind', 'queue'}) do
      if t[name] then redis.call('ZADD', P .. ':by:' .. name .. ':' .. t[name], seq, t.id) end
    end
    redis.call('SADD', P .. ':queues', t.queue)
    move(t.id, nil, 'queued')
    event('task.queued', t.id, 'queued')
    redis.call('ZADD', P .. ':outbox', t_now + tonumber(ARGV[4]), t.id)
    out[i] = {t.id, 1}
  end
end
return out
