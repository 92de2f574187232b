-- ARGV: prefix, then per claim 7 values: task id, worker id, token, lease_s, and for a task
-- whose resource is limited, what Python computed from its limiter (version, permits
-- allowed, blocked_until; '' and zeros before it has read the limiter). Several claims in one
-- call (group commit). Returns one element per claim:
--   false                            not claimable (not queued, not due yet, or expired now)
--   {'claimed', task hash}           running under the new lease (and a permit)
--   {'waiting', until or '', hash}   parked for a permit of its resource
--   {'limited', resource, version, state, now}   compute from this limiter, then call again
local t_now = now()
local function claim(id, worker, token, lease_s, version, allowed, blocked_until)
  local t = redis.call('HMGET', tkey(id), 'status', 'not_before', 'start_by', 'resource', 'tag')
  if t[1] ~= 'queued' then return false end
  if t[3] and tonumber(t[3]) < t_now then
    expire(id, t[3])
    return false
  end
  if tonumber(t[2]) > t_now then return false end
  local resource = t[4]
  if resource then
    local gate = check_limiter(resource, version, t_now)
    if type(gate) == 'table' then return gate end
    if gate and not admits(resource, allowed, blocked_until, t_now) then
      return refuse(id, resource, blocked_until, t_now)
    end
  end
  -- Due but not in line yet (its queue had no claim_next since): it joins as it starts.
  if not t[5] then fair.tag(id) end
  return start(id, worker, token, lease_s, resource, t_now)
end
local out = {}
for i = 2, #ARGV, 7 do
  out[#out + 1] = claim(ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4],
    tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]))
end
return out
