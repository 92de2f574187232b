"""What every peer app shares: the Redis URL and the done counter."""

from __future__ import annotations

import os

import redis

URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
DONE_KEY = "bench:done"
done = redis.Redis.from_url(URL)
