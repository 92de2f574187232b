-- Prepended to the webhook scripts (webhooks.py): the prefix and Redis' clock.
local P = ARGV[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function wkey(id) return P .. ':webhook:' .. id end
