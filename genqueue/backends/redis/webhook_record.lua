-- ARGV: prefix, delivery id, attempt (JSON object), state, retry_in_s. Appends the attempt
-- to a pending delivery's log (as text: no re-encoding), counts it and sets the state: due
-- again retry_in_s from now if still pending, final otherwise. 0 if unknown or not pending.
local key = wkey(ARGV[2])
if redis.call('HGET', key, 'state') ~= 'pending' then return 0 end
local log = redis.call('HGET', key, 'log')
if log == '[]' then
  log = '[' .. ARGV[3] .. ']'
else
  log = string.sub(log, 1, -2) .. ',' .. ARGV[3] .. ']'
end
redis.call('HSET', key, 'log', log, 'state', ARGV[4])
redis.call('HINCRBY', key, 'attempts', 1)
if ARGV[4] == 'pending' then
  local at = now() + tonumber(ARGV[5])
  redis.call('HSET', key, 'next_at', tostring(at))
  redis.call('ZADD', P .. ':webhooks:due', at, ARGV[2])
else
  redis.call('HDEL', key, 'next_at')
  redis.call('ZREM', P .. ':webhooks:due', ARGV[2])
end
return 1
