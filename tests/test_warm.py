"""Models held warm (genqueue/warm.py) and one worker's affinity choices
(genqueue/worker/affinity.py), without a store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from genqueue.contracts import LineEntry
from genqueue.errors import ConfigError
from genqueue.kinds import kind
from genqueue.models import WorkerStatus, utcnow
from genqueue.settings import Settings, load_settings
from genqueue.warm import WarmModels, model_loader
from genqueue.worker.affinity import Affinity
from tests.helpers import wait_for, worker_info
from tests.model_kinds import ModelPayload

EVENTS: list[str] = []
GATE = threading.Event()


@model_loader("recorded")
def recorded(settings: Settings, name: str) -> Iterator[str]:
    EVENTS.append(f"load {name}")
    yield f"model {name}"
    EVENTS.append(f"unload {name}")


@model_loader("gated")
def gated(settings: Settings, name: str) -> Iterator[str]:
    GATE.wait(10)
    EVENTS.append(f"load {name}")
    yield name


@pytest.fixture(autouse=True)
def fresh() -> None:
    EVENTS.clear()
    GATE.clear()


async def test_the_least_recently_used_idle_model_is_unloaded_past_capacity() -> None:
    warm = WarmModels(load_settings(), capacity=2)
    for name in ("a", "b", "a", "c"):
        async with warm.use(recorded, name) as model:
            assert model == f"model {name}"
    assert EVENTS == ["load a", "load b", "load c", "unload b"]
    assert warm.names() == ["a", "c"] and warm.loads == 3
    await warm.aclose()
    assert sorted(EVENTS[-2:]) == ["unload a", "unload c"] and warm.names() == []


async def test_a_model_in_use_is_never_unloaded_under_it() -> None:
    warm = WarmModels(load_settings(), capacity=1)
    async with warm.use(recorded, "a"):
        async with warm.use(recorded, "b"):
            assert warm.names() == ["a", "b"]  # over capacity while both run
        assert "unload a" not in EVENTS
    assert EVENTS == ["load a", "load b", "unload b"]  # b idle first, then a used last
    await warm.aclose()


async def test_tasks_of_one_model_wait_for_one_load() -> None:
    warm = WarmModels(load_settings(), capacity=2)

    asked = []

    async def run() -> str:
        asked.append(1)  # nothing awaits between here and the load's lock
        async with warm.use(gated, "x") as model:
            return str(model)

    runs = [asyncio.create_task(run()) for _ in range(3)]

    async def all_asked() -> bool:
        return len(asked) == 3

    await wait_for(all_asked, 5, 0.001, "all three to ask")
    GATE.set()  # the load finishes only now, with all three waiting on it
    assert await asyncio.gather(*runs) == ["x"] * 3
    assert EVENTS == ["load x"]
    await warm.aclose()


def test_a_kind_names_its_model_and_its_loader_together() -> None:
    with pytest.raises(ConfigError, match="go together"):
        kind("t.m", payload=ModelPayload, model=lambda p: "m")(lambda p, c: None)
    with pytest.raises(ConfigError, match="async or thread"):
        kind("t.p", payload=ModelPayload, executor="process", model=lambda p: "m", models=recorded)
    k = kind("t.ok", payload=ModelPayload, model=lambda p: p["model"], models=recorded)(
        lambda p, c: None
    )
    assert k.model_of({"model": "sd15"}) == "sd15"


def _affinity(theirs: list[str], wait_s: float = 5.0, capacity: int = 2) -> Affinity:
    affinity = Affinity("me", wait_s, capacity)
    other = worker_info("other").model_copy(update={"models": theirs})
    gone = worker_info("gone").model_copy(
        update={"models": ["z"], "status": WorkerStatus.OFFLINE, "last_seen": utcnow()}
    )
    affinity.update([worker_info("me").model_copy(update={"models": ["y"]}), other, gone])
    return affinity


def test_only_models_warm_on_another_online_worker_count() -> None:
    affinity = _affinity(["a", "b"])
    assert affinity.others == {"a", "b"} and affinity.shared(["a", "c"]) == {"a"}


def test_a_passed_over_task_is_this_workers_to_take_after_the_wait() -> None:
    affinity = _affinity(["b"])
    line = [LineEntry("t1", "b"), LineEntry("t2", None), LineEntry("t3", "a"), LineEntry("t4", "b")]
    first = affinity.choose(line, ["a"], now=100.0)
    assert first.tries == ["t2", "t3"] and first.retry_in_s == 5.0
    later = affinity.choose(line, ["a"], now=103.0)
    assert later.tries == ["t2", "t3"] and later.retry_in_s == 2.0
    assert affinity.choose(line, ["a"], now=105.0).tries == ["t1", "t2", "t3", "t4"]


def test_a_full_worker_with_work_for_its_models_leaves_new_models_for_the_wait() -> None:
    affinity = _affinity([], capacity=2)
    line = [LineEntry("t1", "c"), LineEntry("t2", "a")]
    assert affinity.choose(line, ["a", "b"], now=0.0).tries == ["t2"]
    # Room for one more model, or no work for its own: it loads the new one at once.
    assert affinity.choose(line, ["a"], now=0.0).tries == ["t1", "t2"]
    assert affinity.choose([LineEntry("t3", "c")], ["a", "b"], now=0.0).tries == ["t3"]


def test_a_line_of_tasks_all_left_to_others_says_when_to_look_again() -> None:
    choice = _affinity(["b"]).choose([LineEntry("t1", "b")], [], now=10.0)
    assert choice.tries == [] and choice.retry_in_s == 5.0


def test_a_wait_of_zero_turns_affinity_off() -> None:
    affinity = _affinity(["b"], wait_s=0.0)
    assert affinity.choose([LineEntry("t1", "b")], [], now=1.0).tries == ["t1"]


async def test_a_model_another_worker_holds_too_is_unloaded_first() -> None:
    warm = WarmModels(load_settings(), capacity=2, unload_first=lambda held: {"b"} & set(held))
    for name in ("a", "b", "c"):
        async with warm.use(recorded, name):
            pass
    assert warm.names() == ["a", "c"]  # b went, though a was used less recently
    await warm.aclose()
