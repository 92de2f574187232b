-- ARGV: prefix, then per outcome 7 values: task id, token, outcome (succeeded|failed|
-- cancelled|requeue), value (result JSON or error text), delay_s, refund (0/1), attempt;
-- several outcomes in one call (group commit). Each is fenced by its lease token. Returns one
-- element per outcome: the task hash, or the string LEASE_LOST.
local function finish(id, token, outcome, value, delay, refund, attempt)
  local t = redis.call('HMGET', tkey(id), 'status', 'lease_token')
  if t[1] ~= 'running' or t[2] ~= token then return 'LEASE_LOST' end
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
end
local out = {}
for i = 2, #ARGV, 7 do
  out[#out + 1] = finish(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]),
    tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]))
end
return out
