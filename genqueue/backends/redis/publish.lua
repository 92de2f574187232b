-- ARGV: prefix, messages JSON [{queue, task_id, priority, delay_s}]. Wakes consumers.
local t_now = now()
for _, m in ipairs(cjson.decode(ARGV[2])) do
  local id = redis.call('INCR', P .. ':msgseq')
  redis.call('HSET', mkey(id), 'queue', m.queue, 'task_id', m.task_id, 'priority', m.priority)
  if m.delay_s > 0 then
    redis.call('ZADD', P .. ':delayed', t_now + m.delay_s, id)
  else
    ready(id)
  end
end
redis.call('PUBLISH', P .. ':wake', '1')
return 1
