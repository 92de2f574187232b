-- ARGV: prefix, n, then n gates of 4 values (resource, limiter version, permits allowed,
-- blocked_until: what Python computed from that version of the resource's limiter), then
-- per credit 4 values: queue, worker id, token, lease_s. Several credits in one call (group
-- commit), each claiming the task of its queue next in fair order (Store.claim_next; the
-- order's keys are in fair.lua). Returns one element per credit:
--   false                            nothing of the queue may be claimed now
--   {'claimed', task hash, '1' or ''}   running under the new lease ('1': under a gate)
--   {'waiting', until or '', hash}   the first eligible task, parked for a permit
--   {'limits', now, {resource, version, state}...}   compute gates from these, call again
local t_now = now()
local gates, first_credit = {}, 3 + 4 * tonumber(ARGV[2])
for i = 3, first_credit - 1, 4 do
  gates[ARGV[i]] = {ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])}
end
-- The gate of a resource: nil when it is not limited; false when Python must compute it
-- (it is listed in ``missing``); else {version, allowed, blocked_until}.
local missing
local function gate_of(resource)
  local l = redis.call('HMGET', lkey(resource), 'version', 'state')
  if not l[1] then return nil end
  local g = gates[resource]
  if g and g[1] == l[1] then return g end
  missing[#missing + 1] = {resource, l[1], l[2]}
  return false
end
-- The first eligible task of band b: the head of the ready line, or the head of a parked line
-- whose resource admits one more run now, whichever comes first. Its member, and the
-- resource it is parked for (nil if none).
local function first(q, b)
  local tag, m = head(band_key('ready', q, b))
  local parked_for = nil
  for _, r in ipairs(redis.call('SMEMBERS', band_key('parkedfor', q, b))) do
    local g = gate_of(r)
    if g == nil or (g and admits(r, g[2], g[3], t_now)) then
      local rtag, rm = head(band_key('parked', q, b) .. ':' .. r)
      if rtag and (not tag or rtag < tag or (rtag == tag and member_seq(rm) < member_seq(m))) then
        tag, m, parked_for = rtag, rm, r
      end
    end
  end
  return m, parked_for
end
-- A parked task spent its own message when it was parked, so claiming it spends another
-- task's: owe the first task still in line (any band) one, or it could wait for a message that
-- never comes. At worst one message too many finds nothing to claim.
local function owe_next(q)
  for _, b in ipairs(redis.call('ZRANGE', P .. ':bands:' .. q, 0, -1)) do
    local _, m = head(band_key('ready', q, b))
    if m then
      redis.call('ZADD', P .. ':outbox', 'NX', t_now, member_id(m))
      return
    end
  end
end
local promoted = {}
local function claim_next(q, worker, token, lease_s)
  if not promoted[q] then
    fair.promote(q, t_now)
    promoted[q] = true
  end
  missing = {}
  local expired = 0
  for _, b in ipairs(redis.call('ZRANGE', P .. ':bands:' .. q, 0, -1)) do
    while true do
      local m, parked_for = first(q, b)
      if #missing > 0 then return {'limits', string.format('%.6f', t_now), missing} end
      if not m then break end
      local id = member_id(m)
      local t = redis.call('HMGET', tkey(id), 'start_by', 'resource', 'not_before')
      if t[1] and tonumber(t[1]) < t_now then
        expire(id, t[1])
        expired = expired + 1
        if expired >= 1000 then return false end  -- enough work for one call
      elseif tonumber(t[3]) > t_now + CLOCK_SLACK_S then
        -- Not due after all (Redis' clock went back): out of line until it is.
        local u = redis.call('HMGET', tkey(id), 'seq', 'waiting_for')
        fair.leave(id, q, b, tonumber(u[1]), u[2])
        fair.enter(id, t_now)
      else
        local resource = t[2]
        local g = nil  -- HMGET gives false, not nil, for a field not there
        if resource then g = gate_of(resource) end
        if g == false then return {'limits', string.format('%.6f', t_now), missing} end
        if g and not parked_for and not admits(resource, g[2], g[3], t_now) then
          return refuse(id, resource, g[3], t_now)
        end
        local reply = start(id, worker, token, lease_s, resource, t_now)
        reply[3] = g and '1' or ''
        if parked_for then owe_next(q) end
        return reply
      end
    end
  end
  return false
end
local out = {}
for i = first_credit, #ARGV, 4 do
  out[#out + 1] = claim_next(ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]))
end
return out
