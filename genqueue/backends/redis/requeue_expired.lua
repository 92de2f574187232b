-- ARGV: prefix. Running tasks whose lease expired: back to queued, or failed when out of
-- attempts, or cancelled when cancellation was asked. Requeued ones get an outbox entry due
-- now. Then queued tasks whose start_by passed expire (at most 1000 per call, as above).
-- Returns the requeued ids.
local t_now = now()
local expired = redis.call('ZRANGEBYSCORE', P .. ':running', '-inf', t_now, 'LIMIT', 0, 1000)
local requeued = {}
for _, id in ipairs(expired) do
  local t = redis.call('HMGET', tkey(id), 'worker_id', 'attempts', 'max_attempts',
    'cancel_requested')
  local note = 'lease expired on worker ' .. (t[1] or '?') .. ' (attempt ' .. t[2] .. ')'
  release(id)
  redis.call('HSET', tkey(id), 'error', note)
  local data = cjson.encode({error = note})
  if t[4] == '1' then
    move(id, 'running', 'cancelled')
    event('task.cancelled', id, 'cancelled', data)
  elseif tonumber(t[2]) >= tonumber(t[3]) then
    move(id, 'running', 'failed')
    event('task.failed', id, 'failed', data)
  else
    redis.call('HSET', tkey(id), 'not_before', stamp(t_now), 'progress', 0,
      'progress_message', '')
    move(id, 'running', 'queued')
    event('task.retrying', id, 'queued', data)
    redis.call('ZADD', P .. ':outbox', t_now, id)
    requeued[#requeued + 1] = id
  end
end
local overdue = redis.call('ZRANGEBYSCORE', P .. ':deadlines', '-inf',
  string.format('(%.6f', t_now), 'LIMIT', 0, 1000)
for _, id in ipairs(overdue) do
  local t = redis.call('HMGET', tkey(id), 'status', 'start_by')
  if t[1] == 'queued' then
    expire(id, t[2])
  else
    redis.call('ZREM', P .. ':deadlines', id)  -- stale (move keeps the index in step)
  end
end
return requeued
