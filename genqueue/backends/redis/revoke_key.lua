-- ARGV: prefix, id. Store.revoke_key: set revoked_at (the server's clock) unless it is set.
-- Returns the record as a flat HGETALL list, empty for an unknown id.
local key = ARGV[1] .. ':key:' .. ARGV[2]
if redis.call('EXISTS', key) == 0 then
  return {}
end
local t = redis.call('TIME')
redis.call('HSETNX', key, 'revoked_at', tostring(tonumber(t[1]) + tonumber(t[2]) / 1000000))
return redis.call('HGETALL', key)
