-- ARGV: prefix, limit, hold_s. Up to limit due pending deliveries, oldest due first, each
-- held (due again) hold_s from now. Returns each one's fields (HGETALL, flat).
local t_now = now()
local until_at = t_now + tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', P .. ':webhooks:due', '-inf', t_now,
  'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', P .. ':webhooks:due', until_at, id)
  redis.call('HSET', wkey(id), 'next_at', tostring(until_at))
  out[#out + 1] = redis.call('HGETALL', wkey(id))
end
return out
