-- ARGV: prefix, task id, worker id, token, lease_s. Returns the task hash or nil.
local id, worker, token, lease_s = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local t = redis.call('HMGET', tkey(id), 'status', 'not_before')
local t_now = now()
if t[1] ~= 'queued' or tonumber(t[2]) > t_now then return nil end
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
