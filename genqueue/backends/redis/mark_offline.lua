-- ARGV: prefix, silent_s. Live workers (online or degraded: both are in workers:online)
-- silent that long go offline; their leases (and permits) expire now.
local t_now = now()
local silent = redis.call('ZRANGEBYSCORE', P .. ':workers:online', '-inf', t_now - tonumber(ARGV[2]))
for _, worker in ipairs(silent) do
  redis.call('ZREM', P .. ':workers:online', worker)
  redis.call('HSET', P .. ':worker:' .. worker, 'status', 'offline', 'running', '[]', 'reason', '',
    'models', '[]')
  for _, id in ipairs(redis.call('ZRANGE', P .. ':running', 0, -1)) do
    if field(id, 'worker_id') == worker then
      redis.call('ZADD', P .. ':running', t_now - 0.001, id)
      redis.call('HSET', tkey(id), 'lease_expires_at', stamp(t_now - 0.001))
      local resource = field(id, 'resource')
      if resource then
        redis.call('ZADD', P .. ':permits:' .. resource, 'XX', t_now - 0.001, id)
      end
    end
  end
end
return silent
