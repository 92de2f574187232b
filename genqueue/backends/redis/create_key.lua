-- ARGV: prefix, id, key hash, user, role, label ('' for none), created_at (epoch s),
-- tasks_per_minute and in_flight ('' for none: the deployment's default).
-- Store.create_key: the record {p}:key:{id}, the lookup {p}:keyhash:{hash} -> id and the
-- listing {p}:keys, all or none. Returns 0 (nothing written) if the id or the hash exists.
local P = ARGV[1]
local id, hash = ARGV[2], ARGV[3]
local key, lookup = P .. ':key:' .. id, P .. ':keyhash:' .. hash
if redis.call('EXISTS', key) == 1 or redis.call('EXISTS', lookup) == 1 then
  return 0
end
redis.call('HSET', key, 'id', id, 'key_hash', hash, 'user', ARGV[4], 'role', ARGV[5],
  'label', ARGV[6], 'created_at', ARGV[7], 'tasks_per_minute', ARGV[8], 'in_flight', ARGV[9])
redis.call('SET', lookup, id)
redis.call('ZADD', P .. ':keys', ARGV[7], id)
return 1
