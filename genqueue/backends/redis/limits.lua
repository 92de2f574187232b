-- ARGV: prefix, resources... (none: every configured one). Read only. Returns {now, rows}, a
-- row per resource: {resource, version, state, permits held, tasks parked}, with '' for the
-- version and state of a resource never configured.
local t_now = now()
local names = {}
for i = 2, #ARGV do names[#names + 1] = ARGV[i] end
if #names == 0 then names = redis.call('SMEMBERS', P .. ':limiters') end
local rows = {}
for _, resource in ipairs(names) do
  local l = redis.call('HMGET', lkey(resource), 'version', 'state')
  rows[#rows + 1] = {resource, l[1] or '', l[2] or '',
    redis.call('ZCOUNT', P .. ':permits:' .. resource, string.format('(%.6f', t_now), '+inf'),
    redis.call('ZCARD', P .. ':waiting:' .. resource)}
end
return {string.format('%.6f', t_now), rows}
