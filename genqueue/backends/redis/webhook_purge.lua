-- ARGV: prefix, older_than_s. Deliveries made before the cutoff whose task (or batch, for
-- batch.finished) is gone, with their index entries; at most 5000 looked at per call.
local cutoff = now() - tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', P .. ':webhooks:made', '-inf', cutoff, 'LIMIT', 0, 5000)
local gone = 0
for _, id in ipairs(ids) do
  local d = redis.call('HMGET', wkey(id), 'task_id', 'batch_id')
  local task, batch = d[1] or '', d[2] or ''
  local orphan
  if task ~= '' then
    orphan = redis.call('EXISTS', P .. ':task:' .. task) == 0
  else
    orphan = redis.call('EXISTS', P .. ':batch:' .. batch) == 0
  end
  if orphan then
    redis.call('DEL', wkey(id))
    redis.call('ZREM', P .. ':webhooks:made', id)
    redis.call('ZREM', P .. ':webhooks:due', id)
    if task ~= '' then redis.call('ZREM', P .. ':webhooks:task:' .. task, id) end
    if batch ~= '' then redis.call('ZREM', P .. ':webhooks:batch:' .. batch, id) end
    gone = gone + 1
  end
end
return gone
