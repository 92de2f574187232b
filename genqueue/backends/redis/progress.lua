-- ARGV: prefix, task id, token, fraction, message.
local id, token = ARGV[2], ARGV[3]
local t = redis.call('HMGET', tkey(id), 'status', 'lease_token')
if t[1] ~= 'running' or t[2] ~= token then return redis.error_reply('LEASE_LOST') end
redis.call('HSET', tkey(id), 'progress', ARGV[4], 'progress_message', ARGV[5])
event('task.progress', id, 'running',
  cjson.encode({fraction = tonumber(ARGV[4]), message = ARGV[5]}))
return 1
