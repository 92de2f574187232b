-- The fair order of a queue (Store.claim_next in contracts.py), prepended after common.lua.
-- Per queue q and priority band b (the priority as text):
--   ready:{q}:{b}          zset: tasks in line, not parked; score = tag, member = line_member
--   parked:{q}:{b}:{r}     zset: tasks in line parked for a permit of resource r, the same way
--   parkedfor:{q}:{b}      set: the resources r with a non-empty parked:{q}:{b}:{r}
--   bands:{q}              zset: bands with a task in line, score -priority (highest first)
--   fair:{q}:{b}           hash: 'u:' .. user -> F (its last finish tag), '#max' -> largest F
--   later:{q}              zset: queued tasks not in line yet (not due), by not_before
-- Equal tags order by seq: members are the zero-padded seq then the id, and a score tie in a
-- zset orders by member. Tags are integers kept as text ('%.0f'): exact below 2^53.
local function band_key(kind, q, b) return P .. ':' .. kind .. ':' .. q .. ':' .. b end
local function line_member(seq, id) return string.format('%015d:%s', seq, id) end
local function member_id(m) return string.sub(m, 17) end
local function member_seq(m) return tonumber(string.sub(m, 1, 15)) end
local function int(x) return string.format('%.0f', x) end
-- The tag (a number) and member of a line's head, or nil.
local function head(key)
  local h = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if h[1] then return tonumber(h[2]), h[1] end
  return nil
end
-- The floor V: the smallest tag in line (parked included), or the largest F when none is.
function fair.floor(q, b)
  local low = head(band_key('ready', q, b))
  for _, r in ipairs(redis.call('SMEMBERS', band_key('parkedfor', q, b))) do
    local tag = head(band_key('parked', q, b) .. ':' .. r)
    if tag and (not low or tag < low) then low = tag end
  end
  if low then return low end
  return tonumber(redis.call('HGET', band_key('fair', q, b), '#max') or '0')
end
-- A task joining the line for the first time: S = max(V, F[user]), F[user] = S + inc.
local function tag_new(id, q, b)
  local t = redis.call('HMGET', tkey(id), 'user', 'fair_inc')
  local fk, user = band_key('fair', q, b), 'u:' .. (t[1] or '')
  local start = math.max(fair.floor(q, b), tonumber(redis.call('HGET', fk, user) or '0'))
  local finish = start + tonumber(t[2] or '1000')
  redis.call('HSET', fk, user, int(finish))
  if finish > tonumber(redis.call('HGET', fk, '#max') or '0') then
    redis.call('HSET', fk, '#max', int(finish))
  end
  redis.call('HSET', tkey(id), 'tag', int(start))
  return int(start)
end
-- A due task claimed before it joined the line (Store.claim) still moves its user's F.
function fair.tag(id)
  local t = redis.call('HMGET', tkey(id), 'queue', 'priority', 'tag')
  if not t[3] then tag_new(id, t[1], t[2]) end
end
-- Into line (ready, not parked): a new task gets its tag, a requeued one keeps it.
local function join(id, q, b, seq, tag)
  tag = tag or tag_new(id, q, b)
  redis.call('ZADD', band_key('ready', q, b), tag, line_member(seq, id))
  redis.call('ZADD', P .. ':bands:' .. q, -tonumber(b), b)
end
-- A task becoming queued (submit, requeue): into line if due, else to wait for its time.
function fair.enter(id, t_now)
  local t = redis.call('HMGET', tkey(id), 'queue', 'priority', 'seq', 'not_before', 'tag')
  if tonumber(t[4]) > t_now then
    redis.call('ZADD', P .. ':later:' .. t[1], t[4], id)
  else
    join(id, t[1], t[2], tonumber(t[3]), t[5])
  end
end
-- A band leaves bands:{q} once nothing of it is in line.
local function tidy(q, b)
  if redis.call('ZCARD', band_key('ready', q, b)) == 0
      and redis.call('SCARD', band_key('parkedfor', q, b)) == 0 then
    redis.call('ZREM', P .. ':bands:' .. q, b)
  end
end
-- A queued task (q, band b, seq, parked for r or false) leaving wherever it waits: claimed,
-- cancelled, expired, or parking. Most leave the ready line, so the others are tried after.
function fair.leave(id, q, b, seq, r)
  local m = line_member(seq, id)
  if redis.call('ZREM', band_key('ready', q, b), m) == 0 then
    redis.call('ZREM', P .. ':later:' .. q, id)
    if r then
      local key = band_key('parked', q, b) .. ':' .. r
      redis.call('ZREM', key, m)
      if redis.call('ZCARD', key) == 0 then redis.call('SREM', band_key('parkedfor', q, b), r) end
      redis.call('ZREM', P .. ':waiting:' .. r, id)
      redis.call('HDEL', tkey(id), 'waiting_for')
    end
  end
  tidy(q, b)
end
-- A queued task that left the line without a run (cancelled) hands its share back to its
-- user: F = max(V, F - inc) (research/scheduling.md 0.1). A task never tagged moved nothing.
function fair.give_back(id)
  local t = redis.call('HMGET', tkey(id), 'queue', 'priority', 'user', 'fair_inc', 'tag')
  if not t[5] then return end
  local fk, user = band_key('fair', t[1], t[2]), 'u:' .. (t[3] or '')
  local finish = tonumber(redis.call('HGET', fk, user) or '0') - tonumber(t[4] or '1000')
  redis.call('HSET', fk, user, int(math.max(fair.floor(t[1], t[2]), finish)))
end
-- Park a queued due task for a permit of ``resource``: out of the ready line, into its
-- parked line (same place in the order) and the resource's waiting set (for wake).
function fair.park(id, resource)
  local t = redis.call('HMGET', tkey(id), 'queue', 'priority', 'seq', 'tag', 'waiting_for')
  local q, b, seq = t[1], t[2], tonumber(t[3])
  fair.leave(id, q, b, seq, t[5])
  local tag = t[4] or tag_new(id, q, b)
  redis.call('ZADD', band_key('parked', q, b) .. ':' .. resource, tag, line_member(seq, id))
  redis.call('SADD', band_key('parkedfor', q, b), resource)
  redis.call('ZADD', P .. ':bands:' .. q, -tonumber(b), b)
  redis.call('ZADD', P .. ':waiting:' .. resource, order_score(tonumber(b), seq), id)
  redis.call('HSET', tkey(id), 'waiting_for', resource)
end
-- Due tasks of queue q join the line (oldest not_before first, at most 500 per call).
function fair.promote(q, t_now)
  local key = P .. ':later:' .. q
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', t_now, 'LIMIT', 0, 500)) do
    redis.call('ZREM', key, id)
    local t = redis.call('HMGET', tkey(id), 'priority', 'seq', 'tag')
    join(id, q, t[1], tonumber(t[2]), t[3])
  end
end
