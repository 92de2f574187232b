-- ARGV: prefix, task id, token, outcome (succeeded|failed|cancelled|requeue), value (result
-- JSON or error text), delay_s, refund (0/1), attempt. Fenced by the lease token.
local id, token, outcome, value = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local delay, refund, attempt = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local t = redis.call('HMGET', tkey(id), 'status', 'lease_token')
if t[1] ~= 'running' or t[2] ~= token then return redis.error_reply('LEASE_LOST') end
release(id)
if outcome == 'succeeded' then
  redis.call('HSET', tkey(id), 'result', value, 'progress', 1)
  move(id, 'running', 'succeeded')
  event('task.succeeded', id, 'succeeded', cjson.encode({attempt = attempt}))
elseif outcome == 'requeue' then
  if value ~= '' then redis.call('HSET', tkey(id), 'error', value) end
  redis.call('HSET', tkey(id), 'not_before', tostring(now() + delay), 'progress', 0,
    'progress_message', '')
  if refund == 1 then redis.call('HINCRBY', tkey(id), 'attempts', -1) end
  move(id, 'running', 'queued')
  event('task.retrying', id, 'queued',
    cjson.encode({attempt = attempt, error = value, delay_s = delay}))
else
  redis.call('HSET', tkey(id), 'error', value)
  move(id, 'running', outcome)
  event('task.' .. outcome, id, outcome, cjson.encode({attempt = attempt, error = value}))
end
return redis.call('HGETALL', tkey(id))
