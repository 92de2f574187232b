"""Resources in one process: set up once however many runs ask at once, torn down in reverse
order, a failing teardown not stopping the others; async and sync setups alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from genqueue.resources import Resource, ResourceNotReadyError, Resources, resource
from genqueue.settings import Settings, load_settings


def recorder(log: list[str], name: str, *, fail_teardown: bool = False) -> Resource[str]:
    @resource(name)
    def setup(settings: Settings) -> Iterator[str]:
        log.append(f"setup {name}")
        yield f"value of {name}"
        log.append(f"teardown {name}")
        if fail_teardown:
            raise RuntimeError("teardown failed")

    return setup


async def test_concurrent_runs_set_a_resource_up_once_and_share_it() -> None:
    log: list[str] = []
    model = recorder(log, "model")
    resources = Resources(load_settings())
    await asyncio.gather(*(resources.ready([model]) for _ in range(20)))
    assert log == ["setup model"] and resources.get(model) == "value of model"
    await resources.aclose()
    assert log == ["setup model", "teardown model"]


async def test_teardown_is_in_reverse_order_and_survives_a_failing_one() -> None:
    log: list[str] = []
    first, second = recorder(log, "first"), recorder(log, "second", fail_teardown=True)

    @resource("client")
    async def client(settings: Settings) -> AsyncIterator[str]:
        log.append("setup client")
        yield "client"
        log.append("teardown client")

    resources = Resources(load_settings())
    await resources.ready([first, second, client])
    await resources.aclose()
    assert log[3:] == ["teardown client", "teardown second", "teardown first"]
    with pytest.raises(ResourceNotReadyError):
        resources.get(first)


async def test_a_resource_not_declared_is_a_clear_error() -> None:
    with pytest.raises(ResourceNotReadyError, match="list it in the kind's resources"):
        Resources(load_settings()).get(recorder([], "undeclared"))


def test_setup_must_be_a_generator() -> None:
    with pytest.raises(TypeError, match="must yield"):
        resource("plain")(lambda settings: 1)


def test_pool_processes_refuse_async_setups() -> None:
    @resource("async")
    async def client(settings: Settings) -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match="sync resources"):
        Resources(load_settings()).ready_sync([client])
