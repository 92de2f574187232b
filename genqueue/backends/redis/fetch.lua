-- ARGV: prefix, receipt, visibility_s, n, queues... Due delayed messages and lapsed
-- deliveries become ready; then up to n ready messages are delivered under the receipt.
-- Returns {delivered {id, queue, task_id, priority}..., seconds until the next delayed one}.
local receipt, visibility, n = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t_now = now()
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', t_now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', P .. ':delayed', id)
  ready(id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':unacked', '-inf', t_now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', P .. ':unacked', id)
  redis.call('HDEL', mkey(id), 'receipt')
  ready(id)
end
local out = {}
for i = 5, #ARGV do
  if #out >= n then break end
  local popped = redis.call('ZPOPMIN', P .. ':q:' .. ARGV[i], n - #out)
  for j = 1, #popped, 2 do
    local id = popped[j]
    local m = redis.call('HMGET', mkey(id), 'queue', 'task_id', 'priority')
    redis.call('HSET', mkey(id), 'receipt', receipt)
    redis.call('ZADD', P .. ':unacked', t_now + visibility, id)
    out[#out + 1] = {id, m[1], m[2], m[3]}
  end
end
local due = redis.call('ZRANGE', P .. ':delayed', 0, 0, 'WITHSCORES')
local wait = due[2] and tostring(math.max(0, tonumber(due[2]) - t_now)) or '-1'
return {out, wait}
