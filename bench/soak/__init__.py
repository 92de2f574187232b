"""Soak: real deployments under a mixed load while processes and servers fail at random.

    python -m bench.soak [--minutes 10] [--pairings sqlite,redis] [--seed N] [--rate 5]

For each store/broker pairing, an API process and two workers (``python -m genqueue``, as
tests/helpers.py ``Cluster`` runs them, fast leases) on PRIVATE Redis/PostgreSQL servers
(tests/servers.py; RabbitMQ is the shared one, with unique queues). A submitter POSTs single
tasks and batches (``debug.sleep`` 0.01-2 s, ``debug.fail`` that succeeds on a retry or never,
``debug.echo``) and cancels a few; a fault thread, one fault at a time, SIGKILLs a worker or
the API (and restarts it), takes a server down (Redis SIGKILL, PostgreSQL immediate stop,
RabbitMQ stop_app once per pairing) for 5-30 s, drops genqueue's connections, or holds the
SQLite write lock past the busy timeout. The minutes are shared evenly by the pairings; the
drain that follows each is extra (bounded).

Then every accepted (201) task must be finished, and recorded succeeded at most once (the
store's own event log, read by ``Cluster.succeeded_counts``). The table counts lost tasks
(accepted, not finished or unknown), tasks recorded twice, workers that exited on their own
(never restarted: that is a finding), the longest submit-to-start wait (of the last attempt),
and per fault the time from its end to the next task start and success. Exit status 1 if a
task was lost or recorded twice, or a pairing could not be run; logs and each pairing's
tasks.json are then kept.

Modules: ``outcome`` (what one pairing's run found), ``deployment`` (its processes and
private servers), ``faults`` (the injectors), ``load`` (the submitter), ``report`` (the
tables and findings), ``run`` (one pairing end to end, and the CLI).
"""
