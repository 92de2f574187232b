-- ARGV: prefix, then per resource 4 values: resource, limiter version, permits allowed now,
-- blocked_until (computed by Python from the limiter at that version). Wakes the parked
-- tasks the free permits allow (see wake in common.lua). Returns one count per resource, or
-- -1 where the limiter changed since it was read (read it again).
local t_now = now()
local out = {}
for i = 2, #ARGV, 4 do
  local resource = ARGV[i]
  if redis.call('HGET', lkey(resource), 'version') == ARGV[i + 1] then
    out[#out + 1] = wake(resource, tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), t_now)
  else
    out[#out + 1] = -1
  end
end
return out
