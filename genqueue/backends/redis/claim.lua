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
  local t = redis.call('HMGET', tkey(id), 'status', 'not_before', 'start_by', 'resource',
    'priority', 'seq')
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
    if gate and (t_now < blocked_until or live_permits(resource, t_now) >= allowed) then
      redis.call('ZADD', P .. ':waiting:' .. resource,
        order_score(tonumber(t[5]), tonumber(t[6])), id)
      redis.call('HSET', tkey(id), 'waiting_for', resource)
      local until_ = t_now < blocked_until and string.format('%.6f', blocked_until) or ''
      return {'waiting', until_, redis.call('HGETALL', tkey(id))}
    end
    -- Every running task of a resource holds a permit, limited or not yet.
    redis.call('ZADD', P .. ':permits:' .. resource, t_now + lease_s, id)
  end
  move(id, 'queued', 'running')
  local attempts = redis.call('HINCRBY', tkey(id), 'attempts', 1)
  redis.call('HSET', tkey(id), 'worker_id', worker, 'lease_token', token,
    'lease_expires_at', tostring(t_now + lease_s), 'started_at', tostring(t_now),
    'progress', 0, 'progress_message', '')
  redis.call('HDEL', tkey(id), 'error')
  redis.call('ZADD', P .. ':running', t_now + lease_s, id)
  event('task.started', id, 'running',
    cjson.encode({worker_id = worker, attempt = attempts}))
  return {'claimed', redis.call('HGETALL', tkey(id))}
end
local out = {}
for i = 2, #ARGV, 7 do
  out[#out + 1] = claim(ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4],
    tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]))
end
return out
