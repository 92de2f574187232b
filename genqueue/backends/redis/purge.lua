-- ARGV: prefix, older_than_s, kept_s. Finished tasks older than the cutoff, with every index
-- entry; each leaves a tombstone {p}:tombstone:{id} (user, expired_at) expiring after kept_s
-- (none when 0), so its owner reads 410 Gone rather than 404 (Store.tombstone).
local retention, kept = tonumber(ARGV[2]), tonumber(ARGV[3])
local cutoff = now() - retention
local ids = redis.call('ZRANGEBYSCORE', P .. ':finished', '-inf', cutoff, 'LIMIT', 0, 5000)
for _, id in ipairs(ids) do
  local t = redis.call('HMGET', tkey(id), 'status', 'queue', 'batch_id', 'user', 'kind',
    'idempotency_key', 'cache_key')
  local status, queue, batch = t[1], t[2], t[3]
  if kept > 0 then
    local gone = P .. ':tombstone:' .. id
    local finished_at = tonumber(redis.call('ZSCORE', P .. ':finished', id))
    redis.call('HSET', gone, 'user', t[4] or '', 'expired_at', stamp(finished_at + retention))
    redis.call('PEXPIRE', gone, math.ceil(kept * 1000))
  end
  if t[7] then redis.call('ZREM', P .. ':cache:' .. t[7] .. ':' .. (t[4] or ''), id) end
  redis.call('ZREM', P .. ':finished', id)
  redis.call('ZREM', P .. ':tasks', id)
  redis.call('ZREM', P .. ':status:' .. status, id)
  redis.call('HINCRBY', P .. ':counts:' .. queue, status, -1)
  if batch then
    redis.call('ZREM', P .. ':by:batch_id:' .. batch, id)
  end
  redis.call('ZREM', P .. ':by:queue:' .. queue, id)
  if t[4] then redis.call('ZREM', P .. ':by:user:' .. t[4], id) end
  if t[5] then redis.call('ZREM', P .. ':by:kind:' .. t[5], id) end
  if t[6] then redis.call('DEL', P .. ':idem:' .. t[6]) end
  redis.call('DEL', tkey(id), tkey(id) .. ':events')
end
-- Batches older than the cutoff with no task left.
for _, batch in ipairs(redis.call('ZRANGEBYSCORE', P .. ':batches', '-inf', cutoff, 'LIMIT', 0, 1000)) do
  if redis.call('ZCARD', P .. ':by:batch_id:' .. batch) == 0 then
    local user = redis.call('HGET', P .. ':batch:' .. batch, 'user') or ''
    redis.call('ZREM', P .. ':batches:user:' .. user, batch)
    redis.call('DEL', P .. ':batch:' .. batch, P .. ':batch:' .. batch .. ':counts')
    redis.call('ZREM', P .. ':batches', batch)
  end
end
-- Stopped or offline workers not seen since the cutoff.
for _, worker in ipairs(redis.call('ZRANGEBYSCORE', P .. ':workers', '-inf', cutoff)) do
  local status = redis.call('HGET', P .. ':worker:' .. worker, 'status')
  if status ~= 'online' and status ~= 'degraded' then
    redis.call('DEL', P .. ':worker:' .. worker)
    redis.call('ZREM', P .. ':workers', worker)
  end
end
return ids
