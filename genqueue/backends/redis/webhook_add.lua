-- ARGV: prefix, JSON list of deliveries {id, task_id, batch_id, url, event, body, created_at}
-- ('' for no task or batch; created_at epoch seconds in text). Each is stored, pending and
-- due now, only if no delivery has its id. Returns the ids created.
local t_now = now()
local created = {}
for _, d in ipairs(cjson.decode(ARGV[2])) do
  local key = wkey(d.id)
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'id', d.id, 'task_id', d.task_id, 'batch_id', d.batch_id,
      'url', d.url, 'event', d.event, 'body', d.body, 'state', 'pending', 'attempts', 0,
      'next_at', tostring(t_now), 'created_at', d.created_at, 'log', '[]')
    local made = tonumber(d.created_at)
    redis.call('ZADD', P .. ':webhooks:due', t_now, d.id)
    redis.call('ZADD', P .. ':webhooks:made', made, d.id)
    if d.task_id ~= '' then redis.call('ZADD', P .. ':webhooks:task:' .. d.task_id, made, d.id) end
    if d.batch_id ~= '' then
      redis.call('ZADD', P .. ':webhooks:batch:' .. d.batch_id, made, d.id)
    end
    created[#created + 1] = d.id
  end
end
return created
