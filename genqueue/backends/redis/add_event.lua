-- ARGV: prefix, task id, token, event type, data (JSON). An event the handler raised, or
-- the run's live preview: a task.preview replaces the task's previous one in the stream (its
-- entry id is kept in the task hash as preview_event), so only the latest picture is kept.
local id, token = ARGV[2], ARGV[3]
local t = redis.call('HMGET', tkey(id), 'status', 'lease_token', 'preview_event')
if t[1] ~= 'running' or t[2] ~= token then return redis.error_reply('LEASE_LOST') end
local entry = event(ARGV[4], id, 'running', ARGV[5])
if ARGV[4] == 'task.preview' then
  if t[3] then
    redis.call('XDEL', P .. ':events', t[3])
    redis.call('LREM', tkey(id) .. ':events', 1, t[3])
  end
  redis.call('HSET', tkey(id), 'preview_event', entry)
end
return 1
