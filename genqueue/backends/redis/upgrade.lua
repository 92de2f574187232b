-- ARGV: prefix. Data of earlier versions brought up to date. Queued tasks stored before the fair order existed (in the zsets
-- {p}:queued:{queue} of earlier versions) join it, parked ones in their parked line: up to
-- 1000 per queue per call, in their old order. Returns how many are left (call until 0).
local t_now = now()
local left = 0
-- Batches stored before per-user batch lists (Store.list_batches) join theirs, once.
if redis.call('SETNX', P .. ':upgraded:batches_by_user', 1) == 1 then
  local all = redis.call('ZRANGE', P .. ':batches', 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do
    local user = redis.call('HGET', P .. ':batch:' .. all[i], 'user') or ''
    redis.call('ZADD', P .. ':batches:user:' .. user, all[i + 1], all[i])
  end
end
-- Unfinished tasks per user (move() keeps them from now on), counted once.
if redis.call('SETNX', P .. ':upgraded:unfinished', 1) == 1 then
  for _, s in ipairs({'queued', 'running'}) do
    for _, id in ipairs(redis.call('ZRANGE', P .. ':status:' .. s, 0, -1)) do
      local user = redis.call('HGET', tkey(id), 'user')
      if user then redis.call('HINCRBY', P .. ':unfinished', user, 1) end
    end
  end
end
for _, q in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  local key = P .. ':queued:' .. q
  for _, id in ipairs(redis.call('ZRANGE', key, 0, 999)) do
    local t = redis.call('HMGET', tkey(id), 'status', 'tag', 'waiting_for')
    if t[1] == 'queued' and not t[2] then
      if t[3] then fair.park(id, t[3]) else fair.enter(id, t_now) end
    end
    redis.call('ZREM', key, id)
  end
  left = left + redis.call('ZCARD', key)
end
return left
