-- ARGV: prefix, task id, token, lease_s. Returns {cancel_requested, expires_at} or an error.
-- A task with a resource keeps its permit as long as its lease.
local id, token, lease_s = ARGV[2], ARGV[3], tonumber(ARGV[4])
local t = redis.call('HMGET', tkey(id), 'status', 'lease_token', 'cancel_requested', 'resource')
if t[1] ~= 'running' or t[2] ~= token then return redis.error_reply('LEASE_LOST') end
local expires = now() + lease_s
redis.call('HSET', tkey(id), 'lease_expires_at', stamp(expires))
redis.call('ZADD', P .. ':running', expires, id)
if t[4] then redis.call('ZADD', P .. ':permits:' .. t[4], expires, id) end
return {t[3], stamp(expires)}
