-- ARGV: prefix, resource, expected version ('' for a resource not configured yet), state
-- JSON (genqueue.limiter.dump_state). Compare and set: returns 1 if written, 0 if the
-- limiter changed since it was read (read it again).
local key = lkey(ARGV[2])
if (redis.call('HGET', key, 'version') or '') ~= ARGV[3] then return 0 end
redis.call('HSET', key, 'state', ARGV[4])
redis.call('HINCRBY', key, 'version', 1)
redis.call('SADD', P .. ':limiters', ARGV[2])
return 1
