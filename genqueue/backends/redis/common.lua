-- Shared by every store script (prepended by store.py). KEYS are not declared: every key
-- starts with the prefix in ARGV[1], so genqueue needs a single Redis (not Cluster).
local P = ARGV[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
-- A time as the hashes keep it: to the microsecond. tostring keeps 14 digits (100 us for
-- today's epoch) and rounds, so a due-now not_before could land up to 50 us past the next
-- TIME and send a just-submitted task out of line to wait for "later".
local function stamp(t) return string.format('%.6f', t) end
local function tkey(id) return P .. ':task:' .. id end
local function field(id, name) return redis.call('HGET', tkey(id), name) end
-- Order of a resource's parked tasks (wake): priority (higher first), then age.
local function order_score(priority, seq) return (100000 - priority) * 1e9 + seq end
-- The fair order's indexes, defined in fair.lua (prepended after this file); move() keeps
-- them in step.
local fair = {}
-- Each task's own index into the stream (Store.task_events): its last 1000 entry ids
-- (TASK_EVENTS_KEPT in events.py), gone an hour after its last event so that finished
-- tasks kept for days do not keep it too.
local function event(kind, id, status, data)  -- returns the new entry's id
  local t = redis.call('HMGET', tkey(id), 'user', 'batch_id', 'kind')
  local entry = redis.call('XADD', P .. ':events', 'MAXLEN', '~', 100000, '*',
    'type', kind, 'task_id', id, 'status', status, 'at', stamp(now()),
    'user', t[1] or '', 'batch_id', t[2] or '', 'kind', t[3] or '', 'data', data or '{}')
  local own = tkey(id) .. ':events'
  redis.call('RPUSH', own, entry)
  redis.call('LTRIM', own, -1000, -1)
  redis.call('EXPIRE', own, 3600)
  return entry
end
local FINISHED = {succeeded = true, failed = true, cancelled = true, expired = true}
-- A task in line was due by Redis' clock when it joined; it leaves the line as not due only
-- when that clock has gone back further than this (a VM's time sync steps it by milliseconds).
local CLOCK_SLACK_S = 1
-- Move a task between statuses, keeping every index and counter in step: the fair order, the
-- deadlines of queued tasks, the parked tasks of a resource and the permits of running ones.
local function move(id, from, to)
  local t = redis.call('HMGET', tkey(id), 'queue', 'batch_id', 'seq', 'start_by', 'resource',
    'priority', 'waiting_for', 'user')
  local queue, batch, seq = t[1], t[2], tonumber(t[3])
  -- Queued or running tasks per user (Store.count_unfinished, for quotas).
  local was, is = (from and not FINISHED[from]) and 1 or 0, FINISHED[to] and 0 or 1
  if t[8] and was ~= is and redis.call('HINCRBY', P .. ':unfinished', t[8], is - was) <= 0 then
    redis.call('HDEL', P .. ':unfinished', t[8])
  end
  if from then
    redis.call('ZREM', P .. ':status:' .. from, id)
    redis.call('HINCRBY', P .. ':counts:' .. queue, from, -1)
    if batch then redis.call('HINCRBY', P .. ':batch:' .. batch .. ':counts', from, -1) end
    if from == 'queued' then
      fair.leave(id, queue, t[6], seq, t[7])
      if t[4] then redis.call('ZREM', P .. ':deadlines', id) end
    end
    if from == 'running' then
      redis.call('ZREM', P .. ':running', id)
      if t[5] then redis.call('ZREM', P .. ':permits:' .. t[5], id) end
    end
  end
  redis.call('HSET', tkey(id), 'status', to)
  redis.call('ZADD', P .. ':status:' .. to, seq, id)
  redis.call('HINCRBY', P .. ':counts:' .. queue, to, 1)
  if batch then redis.call('HINCRBY', P .. ':batch:' .. batch .. ':counts', to, 1) end
  if to == 'queued' then
    fair.enter(id, now())
    if t[4] then redis.call('ZADD', P .. ':deadlines', t[4], id) end
  end
  if FINISHED[to] then
    local t_now = now()
    redis.call('HSET', tkey(id), 'finished_at', stamp(t_now))
    redis.call('ZADD', P .. ':finished', t_now, id)
  end
end
local function release(id)
  redis.call('HDEL', tkey(id), 'lease_token', 'lease_expires_at')
end
-- Epoch seconds as ISO 8601 UTC to the millisecond (Redis' Lua has no os.date); the date
-- by H. Hinnant's civil_from_days.
local function iso(t)
  local secs = math.floor(t)
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d, math.floor(rem / 3600),
    math.floor(rem % 3600 / 60), rem % 60, math.floor((t - secs) * 1000))
end
-- A queued task not started by its start_by ends expired instead of running late.
local function expire(id, start_by)
  local note = 'not started by its start_by (' .. iso(tonumber(start_by)) .. ')'
  redis.call('HSET', tkey(id), 'error', note)
  move(id, 'queued', 'expired')
  event('task.expired', id, 'expired', cjson.encode({error = note}))
end
-- Shared limits. The AIMD arithmetic stays in Python (genqueue/limiter.py): a script gets
-- what Python computed from the limiter at one version (permits allowed, blocked_until) and
-- uses it only if the version is still current; otherwise it answers with the limiter as it
-- is now, {'limited', resource, version, state, now}, and Python computes again.
local function lkey(resource) return P .. ':limiter:' .. resource end
-- nil: the resource is not limited; true: ``version`` is its limiter's current version;
-- else the 'limited' reply to return.
local function check_limiter(resource, version, t_now)
  local l = redis.call('HMGET', lkey(resource), 'version', 'state')
  if not l[1] then return nil end
  if l[1] == version then return true end
  return {'limited', resource, l[1], l[2], string.format('%.6f', t_now)}
end
-- Permits held: running tasks of the resource whose lease is live (an expired one is dropped
-- here, so a dead worker's permit comes back with its lease).
local function live_permits(resource, t_now)
  local key = P .. ':permits:' .. resource
  redis.call('ZREMRANGEBYSCORE', key, '-inf', t_now)
  return redis.call('ZCARD', key)
end
-- The first parked tasks, as many as there are free permits, get an outbox entry due now
-- (an entry they have is left alone); they stay parked until a claim admits them.
local function wake(resource, allowed, blocked_until, t_now)
  if t_now < blocked_until then return 0 end
  local free = allowed - live_permits(resource, t_now)
  if free <= 0 then return 0 end
  local ids = redis.call('ZRANGE', P .. ':waiting:' .. resource, 0, free - 1)
  for _, id in ipairs(ids) do redis.call('ZADD', P .. ':outbox', 'NX', t_now, id) end
  return #ids
end
-- Start a run of a queued, due task under a new lease (token), taking a permit of its
-- resource if it has one (every running task of a resource holds one, limited or not yet).
local function start(id, worker, token, lease_s, resource, t_now)
  if resource then redis.call('ZADD', P .. ':permits:' .. resource, t_now + lease_s, id) end
  move(id, 'queued', 'running')
  local attempts = redis.call('HINCRBY', tkey(id), 'attempts', 1)
  redis.call('HSET', tkey(id), 'worker_id', worker, 'lease_token', token,
    'lease_expires_at', stamp(t_now + lease_s), 'started_at', stamp(t_now),
    'progress', 0, 'progress_message', '')
  redis.call('HDEL', tkey(id), 'error')
  redis.call('ZADD', P .. ':running', t_now + lease_s, id)
  event('task.started', id, 'running',
    cjson.encode({worker_id = worker, attempt = attempts}))
  return {'claimed', redis.call('HGETALL', tkey(id))}
end
-- Whether a limited resource admits one more run now, by what Python computed from its
-- limiter (permits allowed, blocked_until).
local function admits(resource, allowed, blocked_until, t_now)
  return t_now >= blocked_until and live_permits(resource, t_now) < allowed
end
-- Refuse a run for want of a permit: the task stays queued, parked in its place.
local function refuse(id, resource, blocked_until, t_now)
  fair.park(id, resource)
  local until_ = t_now < blocked_until and string.format('%.6f', blocked_until) or ''
  return {'waiting', until_, redis.call('HGETALL', tkey(id))}
end
