"""Shared fixtures: settings on a temp dir, backends parametrised, a live cluster."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from genqueue.backends import open_broker, open_store
from genqueue.contracts import Broker, Store
from genqueue.settings import Settings, load_settings
from tests.helpers import REDIS_START, Cluster, require_service, unique_name

STORES = ["sqlite", "redis"]
BROKERS = ["sqlite"]
BACKEND_MARKERS = {"redis", "amqp", "postgres"}
REDIS_URL = os.environ.get("GENQUEUE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Mark each test with the backend in its parameter id, so `-m "not redis"` works.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        for marker in BACKEND_MARKERS & set(callspec.id.split("-")):
            item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path, lease_s=2.0, heartbeat_s=0.25, sweep_s=0.25)


def backend_url(name: str, tmp_path: Path) -> str:
    """A fresh, isolated place on the named backend: a temp file, or a unique key prefix."""
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'genqueue.db'}"
    if name == "redis":
        require_service("Redis", "127.0.0.1", 6379, REDIS_START)
        return f"{REDIS_URL}?prefix={unique_name('gqtest')}"
    raise ValueError(name)


async def forget(url: str) -> None:
    """Delete a test's keys (never FLUSHALL a shared server)."""
    if url.startswith("redis"):
        import redis.asyncio as aioredis

        from genqueue.backends.redis.connection import split_url

        plain, prefix = split_url(url)
        client = aioredis.Redis.from_url(plain)
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            await client.delete(key)
        await client.aclose()


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Store]:
    url = backend_url(request.param, settings.data_dir)
    store = await open_store(url, settings)
    yield store
    await store.aclose()
    await forget(url)


@pytest.fixture(params=BROKERS)
async def broker(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Broker]:
    url = backend_url(request.param, settings.data_dir)
    broker = await open_broker(url, settings)
    yield broker
    await broker.aclose()
    await forget(url)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """An API process on a fresh data dir; tests start the workers they need."""
    c = Cluster(tmp_path)
    c.start_api()
    yield c
    c.stop()
