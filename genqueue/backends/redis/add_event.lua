-- ARGV: prefix, task id, token, event type, data (JSON). An event the handler raised.
local id, token = ARGV[2], ARGV[3]
local t = redis.call('HMGET', tkey(id), 'status', 'lease_token')
if t[1] ~= 'running' or t[2] ~= token then return redis.error_reply('LEASE_LOST') end
event(ARGV[4], id, 'running', ARGV[5])
return 1
