"""Shared fixtures: settings on a temp dir, backends parametrised, a live cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from genqueue.backends import open_broker, open_store
from genqueue.contracts import Broker, Store
from genqueue.settings import Settings, load_settings
from tests.helpers import Cluster

BACKENDS = ["sqlite"]
BACKEND_MARKERS = {"redis", "amqp", "postgres"}


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


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def backend_settings(backend: str, settings: Settings) -> Settings:
    return settings


@pytest.fixture
async def store(backend_settings: Settings) -> AsyncIterator[Store]:
    store = await open_store(backend_settings.store, backend_settings)
    yield store
    await store.aclose()


@pytest.fixture
async def broker(backend_settings: Settings) -> AsyncIterator[Broker]:
    broker = await open_broker(backend_settings.broker, backend_settings)
    yield broker
    await broker.aclose()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """An API process on a fresh data dir; tests start the workers they need."""
    c = Cluster(tmp_path)
    c.start_api()
    yield c
    c.stop()
