-- ARGV: prefix, key id, tasks, per window, window length in seconds.
-- Store.spend_quota: {p}:quota:{key id} is the key's count in the window {p}:quota:...'s
-- 'window' field names (floor(Redis' clock / window_s)); a new window starts it at 0. The
-- tasks are counted only if they fit. Returns {1 admitted | 0 refused, used, resets_in_s}.
local key = ARGV[1] .. ':quota:' .. ARGV[2]
local tasks, per_window, window_s = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = math.floor(now / window_s)
local resets_in_s = tostring((window + 1) * window_s - now)
local q = redis.call('HMGET', key, 'window', 'used')
local used = 0
if tonumber(q[1]) == window then used = tonumber(q[2]) end
if used + tasks > per_window then
  return {0, used, resets_in_s}
end
redis.call('HSET', key, 'window', window, 'used', used + tasks)
-- Kept past its window's end only as long as the window again: idle keys leave nothing.
redis.call('PEXPIRE', key, math.ceil(2 * window_s * 1000))
return {1, used + tasks, resets_in_s}
