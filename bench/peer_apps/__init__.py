"""The same no-op task in each peer queue, for bench/redis_peers.py, bench/amqp_peers.py and
bench/throughput.py (Huey).

These modules run in the peers' own virtualenv (.venv-bench) and never import genqueue. Each
no-op increments one counter, ``bench:done``, so the driver knows when all N have run.
"""
