-- Shared by every store script (prepended by store.py). KEYS are not declared: every key
-- starts with the prefix in ARGV[1], so genqueue needs a single Redis (not Cluster).
local P = ARGV[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function tkey(id) return P .. ':task:' .. id end
local function field(id, name) return redis.call('HGET', tkey(id), name) end
-- Order inside a queue: priority (higher first), then age. ZRANK of this score is the position.
local function order_score(priority, seq) return (100000 - priority) * 1e9 + seq end
local function event(kind, id, status, data)
  local t = redis.call('HMGET', tkey(id), 'user', 'batch_id', 'kind')
  redis.call('XADD', P .. ':events', 'MAXLEN', '~', 100000, '*',
    'type', kind, 'task_id', id, 'status', status, 'at', tostring(now()),
    'user', t[1] or '', 'batch_id', t[2] or '', 'kind', t[3] or '', 'data', data or '{}')
end
-- Move a task between statuses, keeping every index and counter in step.
local function move(id, from, to)
  local t = redis.call('HMGET', tkey(id), 'queue', 'batch_id', 'seq', 'priority')
  local queue, batch, seq, priority = t[1], t[2], tonumber(t[3]), tonumber(t[4])
  if from then
    redis.call('ZREM', P .. ':status:' .. from, id)
    redis.call('HINCRBY', P .. ':counts:' .. queue, from, -1)
    if batch then redis.call('HINCRBY', P .. ':batch:' .. batch .. ':counts', from, -1) end
    if from == 'queued' then redis.call('ZREM', P .. ':queued:' .. queue, id) end
    if from == 'running' then redis.call('ZREM', P .. ':running', id) end
  end
  redis.call('HSET', tkey(id), 'status', to)
  redis.call('ZADD', P .. ':status:' .. to, seq, id)
  redis.call('HINCRBY', P .. ':counts:' .. queue, to, 1)
  if batch then redis.call('HINCRBY', P .. ':batch:' .. batch .. ':counts', to, 1) end
  if to == 'queued' then redis.call('ZADD', P .. ':queued:' .. queue, order_score(priority, seq), id) end
  if to == 'succeeded' or to == 'failed' or to == 'cancelled' then
    local t_now = now()
    redis.call('HSET', tkey(id), 'finished_at', tostring(t_now))
    redis.call('ZADD', P .. ':finished', t_now, id)
  end
end
local function release(id)
  redis.call('HDEL', tkey(id), 'lease_token', 'lease_expires_at')
end
