-- ARGV: prefix, then per outcome 12 values: task id, token, outcome (succeeded|failed|
-- cancelled|requeue|throttled), value (result JSON or error text), delay_s, refund (0/1),
-- batch_size (the run's batch size, '' if it was not batched; cancelled and throttled do not
-- tell it and leave the task's as it was), attempt, and for a task whose resource is limited,
-- what Python computed from its limiter: version, permits allowed and blocked_until after
-- this outcome, and its new state for 'throttled' ('' and zeros before it has read the
-- limiter). Several outcomes in one call (group commit). Each is fenced by its lease token.
-- Returns one element per outcome: {'done', task hash}, the string LEASE_LOST, or
-- {'limited', resource, version, state, now} (compute from this limiter, then call again;
-- nothing was written). Succeeded and failed runs move the service time of their
-- (queue, kind) in the same step.
-- The service time of the run's (queue, kind) in {p}:service_times (field: JSON [queue, kind],
-- value: 'mean deviation samples'), moved by this run's length.
local function sample(id)
  local t = redis.call('HMGET', tkey(id), 'queue', 'kind', 'started_at')
  if not t[3] then return end
  local x = now() - tonumber(t[3])
  local key, name = P .. ':service_times', cjson.encode({t[1], t[2]})
  local mean, dev, n = x, 0, 1
  local old = redis.call('HGET', key, name)
  if old then
    local m0, d0, n0 = string.match(old, '^(%S+) (%S+) (%S+)$')
    m0, d0 = tonumber(m0), tonumber(d0)
    dev = d0 + 0.2 * (math.abs(x - m0) - d0)
    mean = m0 + 0.2 * (x - m0)
    n = tonumber(n0) + 1
  end
  redis.call('HSET', key, name, string.format('%.17g %.17g %d', mean, dev, n))
end
local function finish(id, token, outcome, value, delay, refund, batch_size, attempt, version,
                      allowed, blocked_until, new_state)
  local t = redis.call('HMGET', tkey(id), 'status', 'lease_token', 'resource')
  if t[1] ~= 'running' or t[2] ~= token then return 'LEASE_LOST' end
  local resource, limited = t[3], false
  if resource then
    local gate = check_limiter(resource, version, now())
    if type(gate) == 'table' then return gate end
    limited = gate == true
  end
  if limited and new_state ~= '' then
    redis.call('HSET', lkey(resource), 'state', new_state)
    redis.call('HINCRBY', lkey(resource), 'version', 1)
  end
  release(id)
  if outcome ~= 'cancelled' and outcome ~= 'throttled' then
    if batch_size == '' then redis.call('HDEL', tkey(id), 'batch_size')
    else redis.call('HSET', tkey(id), 'batch_size', batch_size) end
  end
  if outcome == 'succeeded' then
    redis.call('HSET', tkey(id), 'result', value, 'progress', 1)
    sample(id)
    move(id, 'running', 'succeeded')
    event('task.succeeded', id, 'succeeded', cjson.encode({attempt = attempt}))
  elseif outcome == 'requeue' or outcome == 'throttled' then
    local t_now = now()
    if outcome == 'throttled' and limited then
      delay = math.max(delay, blocked_until - t_now)
    end
    if value ~= '' then redis.call('HSET', tkey(id), 'error', value) end
    redis.call('HSET', tkey(id), 'not_before', string.format('%.6f', t_now + delay), 'progress', 0,
      'progress_message', '')
    if refund == 1 then redis.call('HINCRBY', tkey(id), 'attempts', -1) end
    move(id, 'running', 'queued')
    local data = {attempt = attempt, error = value, delay_s = delay}
    if outcome == 'throttled' then data.throttled = true end
    event('task.retrying', id, 'queued', cjson.encode(data))
  else
    redis.call('HSET', tkey(id), 'error', value)
    if outcome == 'failed' then sample(id) end
    move(id, 'running', outcome)
    event('task.' .. outcome, id, outcome, cjson.encode({attempt = attempt, error = value}))
  end
  -- The permit went with 'running' (move): hand it to a parked task.
  if limited then wake(resource, allowed, blocked_until, now()) end
  return {'done', redis.call('HGETALL', tkey(id))}
end
local out = {}
for i = 2, #ARGV, 12 do
  out[#out + 1] = finish(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]),
    tonumber(ARGV[i + 5]), ARGV[i + 6], tonumber(ARGV[i + 7]), ARGV[i + 8],
    tonumber(ARGV[i + 9]), tonumber(ARGV[i + 10]), ARGV[i + 11])
end
return out
