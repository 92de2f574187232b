"""Shared fixtures: settings on a temp dir, backends parametrised, a live cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from genqueue.backends import open_broker, open_store
from genqueue.contracts import Broker, Store
from genqueue.settings import Settings, load_settings
from tests.helpers import Cluster, backend_url, forget

STORES = ["sqlite", "redis", "postgres"]
BROKERS = ["sqlite", "redis", "postgres", "amqp"]
BACKEND_MARKERS = {"redis", "amqp", "postgres"}


# Run alone by `make test`, after the parallel part: tests that stop the shared RabbitMQ
# (stop_app), which every other test using it would trip over, and tests whose deadlines
# count SIGKILL recovery against the default lease, which a loaded machine stretches. The
# other outage tests stop private servers of their own and run in parallel, as do the
# supervisor's (test_supervise.py: their waits are its restart backoff, with room to spare).
EXCLUSIVE_FILES = {"test_amqp_faults.py", "test_crash.py"}
EXCLUSIVE_TESTS = {"test_rabbitmq_down_for_30s_loses_nothing_and_stops_no_worker"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Mark each test with the backend in its parameter id, so `-m "not redis"` works.
    for item in items:
        name = getattr(item, "originalname", item.name)
        if item.path.name in EXCLUSIVE_FILES or name in EXCLUSIVE_TESTS:
            item.add_marker(pytest.mark.exclusive)
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        for marker in BACKEND_MARKERS & set(callspec.id.split("-")):
            item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path, lease_s=2.0, heartbeat_s=0.25, sweep_s=0.25)


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Store]:
    url = backend_url(request.param, settings.data_dir)
    store = await open_store(url, settings)
    yield store
    await store.aclose()
    forget(url)


@pytest.fixture(params=BROKERS)
def broker_url(request: pytest.FixtureRequest, settings: Settings) -> Iterator[str]:
    url = backend_url(request.param, settings.data_dir)
    yield url
    forget(url)


@pytest.fixture
async def broker(broker_url: str, settings: Settings) -> AsyncIterator[Broker]:
    broker = await open_broker(broker_url, settings)
    yield broker
    await broker.aclose()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """An API process on a fresh data dir; tests start the workers they need."""
    c = Cluster(tmp_path)
    c.start_api()
    yield c
    c.stop()


# Store and broker on one engine, or "<broker>-<store>": the pairings worth running.
DEPLOYMENTS = ["sqlite", "redis", "postgres", "amqp-postgres", "amqp-redis"]


@pytest.fixture(params=DEPLOYMENTS)
def backend_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """Like ``cluster``, once per backend: for the guarantees every backend must keep."""
    c = Cluster(tmp_path, backend=request.param)
    c.start_api()
    yield c
    c.stop()
