"""What every peer app shares: the broker URL, and the done counter (always on Redis).

BENCH_BROKER picks the broker the peer uses (default: the same Redis); the done counter stays
on Redis whatever the broker, so every system pays the same for it.
"""

from __future__ import annotations

import os

import redis

URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
BROKER = os.environ.get("BENCH_BROKER", URL)
DONE_KEY = "bench:done"
done = redis.Redis.from_url(URL)
