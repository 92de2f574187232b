-- Shared by every broker script (prepended by broker.py). ARGV[1] is the key prefix.
local P = ARGV[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function mkey(id) return P .. ':msg:' .. id end
-- Ready order: priority (higher first), then publish order.
local function ready(id)
  local m = redis.call('HMGET', mkey(id), 'queue', 'priority')
  redis.call('ZADD', P .. ':q:' .. m[1], (100000 - tonumber(m[2])) * 1e9 + tonumber(id), id)
end
