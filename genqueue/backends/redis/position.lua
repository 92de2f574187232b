-- ARGV: prefix, task id. Read only. The task's 1-based place in the fair order of its queue
-- (fair.lua), parked tasks counted in their place; 0 when it is not in line (not queued, or
-- waiting for its time); -1 when there is no such task. O(log n) per line of the queue.
local id = ARGV[2]
local t = redis.call('HMGET', tkey(id), 'status', 'queue', 'priority', 'seq', 'tag',
  'waiting_for')
if not t[1] then return -1 end
if t[1] ~= 'queued' or not t[5] then return 0 end
local q, b, seq, tag = t[2], t[3], tonumber(t[4]), t[5]
local own = band_key('ready', q, b)
if t[6] then own = band_key('parked', q, b) .. ':' .. t[6] end
local rank = redis.call('ZRANK', own, line_member(seq, id))
if not rank then return 0 end
-- Every line of a band: the ready one and one per resource with parked tasks.
local function lines(band)
  local keys = {band_key('ready', q, band)}
  for _, r in ipairs(redis.call('SMEMBERS', band_key('parkedfor', q, band))) do
    keys[#keys + 1] = band_key('parked', q, band) .. ':' .. r
  end
  return keys
end
-- How many of a line I am not in come before me: a smaller tag, or the same tag and older
-- (found by bisection among the equal tags, which are at most one per user).
local function ahead(key)
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. tag)
  local hi = lo + redis.call('ZCOUNT', key, tag, tag)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if member_seq(redis.call('ZRANGE', key, mid, mid)[1]) < seq then lo = mid + 1 else hi = mid end
  end
  return lo
end
local higher = string.format('(%d', -tonumber(b))
for _, band in ipairs(redis.call('ZRANGEBYSCORE', P .. ':bands:' .. q, '-inf', higher)) do
  for _, key in ipairs(lines(band)) do rank = rank + redis.call('ZCARD', key) end
end
for _, key in ipairs(lines(b)) do
  if key ~= own then rank = rank + ahead(key) end
end
return rank + 1
