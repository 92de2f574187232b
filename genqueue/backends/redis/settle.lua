-- ARGV: prefix, message id, receipt, mode (ack | nack), delay_s. Only the holder of the
-- current receipt may settle a message, so a stale consumer changes nothing.
local id, receipt, mode, delay = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('HGET', mkey(id), 'receipt') ~= receipt then return 0 end
redis.call('ZREM', P .. ':unacked', id)
if mode == 'ack' then
  redis.call('DEL', mkey(id))
  return 1
end
redis.call('HDEL', mkey(id), 'receipt')
if delay > 0 then
  redis.call('ZADD', P .. ':delayed', now() + delay, id)
else
  ready(id)
end
redis.call('PUBLISH', P .. ':wake', '1')
return 1
