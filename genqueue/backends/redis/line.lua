-- ARGV: prefix, queue, limit. Read only. The first ``limit`` tasks of the queue's ready lines
-- (fair.lua) in claim_next's order: bands by priority, then tag and age in each; tasks not
-- due (Redis' clock went back past CLOCK_SLACK_S) are passed over, not moved. Parked tasks
-- and tasks not in line yet are not shown. Returns {id, model or false} per task.
local q, limit = ARGV[2], tonumber(ARGV[3])
local t_now = now()
local out = {}
for _, b in ipairs(redis.call('ZRANGE', P .. ':bands:' .. q, 0, -1)) do
  local key, from = band_key('ready', q, b), 0
  while #out < limit do
    local members = redis.call('ZRANGE', key, from, from + limit - 1)
    if #members == 0 then break end
    for _, m in ipairs(members) do
      local id = member_id(m)
      local t = redis.call('HMGET', tkey(id), 'not_before', 'model')
      if tonumber(t[1]) <= t_now + CLOCK_SLACK_S then
        out[#out + 1] = {id, t[2]}
        if #out >= limit then break end
      end
    end
    from = from + #members
  end
  if #out >= limit then break end
end
return out
