-- ARGV: prefix, limit, hold_s. Up to limit due outbox entries of queued tasks, each held for
-- hold_s; entries of tasks no longer queued are dropped. Returns {task id, queue, priority,
-- seconds until not_before} per entry.
local t_now = now()
local hold = tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', P .. ':outbox', '-inf', t_now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(due) do
  local t = redis.call('HMGET', tkey(id), 'status', 'queue', 'priority', 'not_before')
  if t[1] == 'queued' then
    redis.call('ZADD', P .. ':outbox', t_now + hold, id)
    out[#out + 1] = {id, t[2], t[3], tostring(math.max(0, tonumber(t[4]) - t_now))}
  else
    redis.call('ZREM', P .. ':outbox', id)
  end
end
return out
