-- ARGV: prefix, then (message id, receipt) pairs: acknowledge many deliveries in one call.
local n = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HGET', mkey(id), 'receipt') == ARGV[i + 1] then
    redis.call('ZREM', P .. ':unacked', id)
    redis.call('DEL', mkey(id))
    n = n + 1
  end
end
return n
