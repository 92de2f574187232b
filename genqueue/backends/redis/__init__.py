"""Redis backend: store and broker on one Redis server (redis-py asyncio, Lua scripts).

Key layout (every key starts with the prefix, ``genqueue`` unless the URL says
``?prefix=...``):

Store
    {p}:task:{id}              hash: the task record (payload and result as JSON text;
                               preview_event: the stream id of its kept task.preview)
    {p}:task:{id}:events       list: the ids of the task's entries in {p}:events, oldest
                               first, its last 1000 (Store.task_events); expires an hour
                               after the task's last event
    {p}:seq                    counter: submission order
    {p}:idem:{key}             string: task id of an idempotency key
    The fair order of queue q (Store.claim_next; b = a priority as text; fair.lua):
    {p}:ready:{q}:{b}          zset: queued tasks in line and not parked, score = fair tag
                               (an integer), member = zero-padded seq + ':' + id, so equal
                               tags order by age; ZRANK and a few ZCOUNTs give a position
    {p}:parked:{q}:{b}:{r}     zset: the same for tasks in line parked for resource r
    {p}:parkedfor:{q}:{b}      set: resources r with tasks in parked:{q}:{b}:{r}
    {p}:bands:{q}              zset: priorities with tasks in line, by -priority
    {p}:fair:{q}:{b}           hash: 'u:' + user -> the user's last finish tag F, and '#max'
    {p}:later:{q}              zset: queued ids not in line yet (not due), by not_before;
                               claim_next of q brings the due ones into line
    {p}:service_times          hash: JSON [queue, kind] -> 'mean_s deviation_s samples'
    {p}:running                zset: running ids by lease expiry (recovery scans the head)
    {p}:deadlines              zset: queued ids that have a start_by, by start_by (expiry
                               scans the head)
    {p}:finished               zset: finished ids by finish time (retention)
    {p}:tasks, {p}:status:{s}, {p}:by:{user|batch_id|kind|queue}:{v}
                               zsets by seq: listings, newest first
    {p}:counts:{queue}         hash: status -> count (queue stats without scanning)
    {p}:queues                 set: every queue name seen
    {p}:batch:{id}, {p}:batch:{id}:counts, {p}:batches
                               batch record, its counts per status, batches by creation time
    {p}:outbox                 zset: task ids whose message may not be published yet, by the
                               time a relay may publish it (Store.take_outbox)
    {p}:events                 stream: task events (MAXLEN ~100000), read by every API
    {p}:worker:{id}, {p}:workers, {p}:workers:online
                               worker record; all workers and live ones (online or
                               degraded) by last-seen time
    {p}:key:{id}               hash: an API key's record (id, key_hash, user, role, label,
                               created_at, revoked_at); never the key (genqueue/keys.py)
    {p}:keyhash:{hash}         string: the id of the key with that SHA-256
    {p}:keys                   zset: key ids by created_at (create_key.lua, revoke_key.lua)
    {p}:tombstone:{id}, {p}:cache:{cache_key}:{user}
                               a purged task's tombstone (410 Gone), the result cache's
                               index (purge.lua, submit.lua; layout in expiry.py)
    {p}:unfinished             hash: user -> queued or running tasks (kept by move() in
                               common.lua; Store.count_unfinished)
    {p}:quota:{key id}         hash: window, used: the key's submits in its current window
                               (spend_quota.lua), expires after two windows
    {p}:webhook:{id}, {p}:webhooks:*
                               webhook deliveries, their indexes and the pumps' cursor
                               (layout in webhooks.py); targets: field webhook of a task
                               or batch hash (JSON)
    {p}:limiters               set: every resource with a limiter (Store.configure_limits)
    {p}:limiter:{resource}     hash: state (genqueue.limiter.dump_state JSON) and version (+1
                               on every write; scripts decide only with the current one)
    {p}:permits:{resource}     zset: running ids of the resource by lease expiry; the live
                               ones (score > now) are its permits held
    {p}:waiting:{resource}     zset: queued ids parked for a permit, by priority then age
                               (which ones wake_waiting wakes first)

Broker
    {p}:q:{queue}              zset: ready message ids, score (100000 - priority) * 1e9 + n
    {p}:delayed                zset: message ids by due time
    {p}:unacked                zset: delivered message ids by visibility deadline
    {p}:msg:{id}               hash: queue, task_id, priority, receipt
    {p}:msgseq                 counter
    {p}:wake                   pub/sub channel: "something was published"

Why sorted sets and not Streams or lists: a queue here must give priority order, a task's
position and the cancel of one queued task, all in O(log n); a stream or a list gives none.
Every multi-key change is one Lua script (``*.lua`` here), so a crash between two commands
cannot leave a task half-moved. Scripts build key names from the prefix, so genqueue needs a
single Redis (or a Redis Cluster hash-tagged on the prefix), not arbitrary sharding.
"""
