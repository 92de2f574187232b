-- ARGV: prefix, then (task id, worker id, token, lease_s) per claim, several claims in one
-- call (group commit). Returns one element per claim: the task hash, or false if the task is
-- not claimable (not queued, or not due yet).
local t_now = now()
local function claim(id, worker, token, lease_s)
  local t = redis.call('HMGET', tkey(id), 'status', 'not_before')
  if t[1] ~= 'queued' or tonumber(t[2]) > t_now then return false end
  move(id, 'queued', 'running')
  local attempts = redis.call('HINCRBY', tkey(id), 'attempts', 1)
  redis.call('HSET', tkey(id), 'worker_id', worker, 'lease_token', token,
    'lease_expires_at', tostring(t_now + lease_s), 'started_at', tostring(t_now),
    'progress', 0, 'progress_message', '')
  redis.call('HDEL', tkey(id), 'error')
  redis.call('ZADD', P .. ':running', t_now + lease_s, id)
  event('task.started', id, 'running',
    cjson.encode({worker_id = worker, attempt = attempts}))
  return redis.call('HGETALL', tkey(id))
end
local out = {}
for i = 2, #ARGV, 4 do
  out[#out + 1] = claim(ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]))
end
return out
