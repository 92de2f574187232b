-- ARGV: prefix. Queued tasks stored before the fair order existed (in the zsets
-- {p}:queued:{queue} of earlier versions) join it, parked ones in their parked line: up to
-- 1000 per queue per call, in their old order. Returns how many are left (call until 0).
local t_now = now()
local left = 0
for _, q in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  local key = P .. ':queued:' .. q
  for _, id in ipairs(redis.call('ZRANGE', key, 0, 999)) do
    local t = redis.call('HMGET', tkey(id), 'status', 'tag', 'waiting_for')
    if t[1] == 'queued' and not t[2] then
      if t[3] then fair.park(id, t[3]) else fair.enter(id, t_now) end
    end
    redis.call('ZREM', key, id)
  end
  left = left + redis.call('ZCARD', key)
end
return left
