-- ARGV: prefix, task ids... Queued -> cancelled; running -> cancel_requested. Returns count.
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local t = redis.call('HMGET', tkey(id), 'status', 'cancel_requested')
  if t[1] == 'queued' then
    redis.call('HSET', tkey(id), 'error', 'cancelled')
    move(id, 'queued', 'cancelled')
    fair.give_back(id)
    event('task.cancelled', id, 'cancelled')
    n = n + 1
  elseif t[1] == 'running' and t[2] ~= '1' then
    redis.call('HSET', tkey(id), 'cancel_requested', 1)
    event('task.cancel_requested', id, 'running')
    n = n + 1
  end
end
return n
