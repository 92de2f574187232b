-- ARGV: prefix, visibility_s, then (message id, receipt) pairs: push the deadline of held
-- messages forward while their consumer lives.
local deadline = now() + tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  if redis.call('HGET', mkey(ARGV[i]), 'receipt') == ARGV[i + 1] then
    redis.call('ZADD', P .. ':unacked', 'XX', deadline, ARGV[i])
  end
end
return 1
