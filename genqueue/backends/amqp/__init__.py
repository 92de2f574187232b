"""RabbitMQ broker (aio-pika / aiormq): durable queues, publisher confirms, manual ack, prefetch,
delays by dead-lettering, and reconnection.

Layout (``<p>`` is the URL's ``?prefix=``, ``genqueue`` by default; the default exchange "" is
the only exchange used, routing by queue name)::

    <p>.<queue>                    the queue of genqueue queue <queue>: durable; classic with
                                   x-max-priority = GENQUEUE_AMQP__MAX_PRIORITY, or quorum.
                                   GENQUEUE_AMQP__QUEUE_NAMES can name it exactly instead
                                   ({"image": "image.generate.task"}), used as given
    <p>.<queue>.delay.<ms>         wait queue for delays of <ms> (rounded up to 2 significant
                                   digits): x-message-ttl <ms>, dead-letters into the main
                                   queue (x-dead-letter-exchange "", routing key = its name),
                                   x-expires <ms> + 60 s so unused ones vanish

Message: body = the task id (UTF-8); delivery_mode 2 (persistent); priority = genqueue's
-1000..1000 mapped monotonically onto 0..max_priority with 0 in the middle (classic only).

Choices, and why:

- Queue type. ``auto`` declares classic priority queues on every server version: the contract
  orders by priority, and quorum queues ignore priorities (3.x) or have two levels served 2:1
  (4.x). ``quorum`` is there for replication across a cluster, trading the priority order.
- Prefetch. One channel per ``consume()``. For several classic queues, one channel-wide
  (global) ``basic.qos`` so the prefetch is shared exactly; quorum queues refuse global QoS
  (the server closes the connection), so each of their consumers gets a share of it.
- Publish. On one confirm channel, all messages of a call concurrently, mandatory, returning
  once every confirm is in (a returned message means its queue vanished: declared again and
  sent once more). While reconnecting a publish waits up to GENQUEUE_AMQP__TIMEOUT_S, then
  raises ``BackendUnavailableError`` (the API answers 503 and withdraws the task).
- Delays. A per-delay wait queue, because RabbitMQ expires messages only at a queue's head:
  one TTL per queue keeps expiry in order. ``nack(delay)`` publishes the delayed copy
  (confirmed) before acknowledging the original, so the message always exists.
- Reconnect. ``connect_robust`` keeps the connection, with a pause growing with the outage up
  to GENQUEUE_AMQP__RECONNECT_MAX_S; channels are ours: a consumer subscribes again on a new
  channel, publish and admin channels reopen on next use. A delivery from a dead channel is
  never handed out, and settling one is a no-op: the server delivers it again and the store's
  claim fences the duplicate.
- Mismatch. A queue that exists with other arguments (406 PRECONDITION_FAILED) raises
  ``ConfigError`` naming the queue and argument, from publish and from ``consume``.
"""

from genqueue.backends.amqp.broker import AmqpBroker, AmqpDelivery

__all__ = ["AmqpBroker", "AmqpDelivery"]
