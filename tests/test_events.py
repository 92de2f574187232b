"""EventHub on every store: resumed subscribers get what they missed, then live events, once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from genqueue.contracts import Store
from genqueue.events import EventFilter, EventHub, Subscription, event_order
from genqueue.models import Event
from tests.contract.test_store import submit_one
from tests.helpers import wait_for


@pytest.fixture
async def hub(store: Store) -> AsyncIterator[EventHub]:
    hub = EventHub(store)
    await hub.start()
    yield hub
    await hub.aclose()


async def take(sub: Subscription, n: int) -> list[Event]:
    events: list[Event] = []
    for _ in range(n):
        event = await sub.next(5.0)
        assert event is not None, f"got {len(events)} events of {n}"
        events.append(event)
    return events


async def test_a_resumed_subscriber_gets_missed_events_then_live_ones_once(
    store: Store, hub: EventHub
) -> None:
    seen: list[Event] = []
    hub.listeners.append(seen.append)
    async with hub.subscribe(EventFilter()) as first:
        early = [await submit_one(store) for _ in range(2)]
        got = await take(first, 2)
    missed = [await submit_one(store) for _ in range(3)]
    await wait_for(lambda: _async(len(seen) == 5), message="the hub to dispatch them")

    async with hub.subscribe(EventFilter(), after=got[0].id) as again:
        live = [await submit_one(store) for _ in range(2)]
        events = await take(again, 1 + 3 + 2)
        more = await submit_one(store)
        events += await take(again, 1)
    assert [e.task_id for e in events] == [early[1], *missed, *live, more]
    ids = [e.id for e in events]
    assert sorted(ids, key=event_order) == ids and len(set(ids)) == len(ids)


async def test_a_subscriber_resuming_from_the_hubs_newest_event_gets_live_ones(
    store: Store, hub: EventHub
) -> None:
    async with hub.subscribe(EventFilter()) as first:
        await submit_one(store)
        [newest] = await take(first, 1)
    async with hub.subscribe(EventFilter(), after=newest.id) as again:
        later = await submit_one(store)
        [event] = await take(again, 1)
    assert event.task_id == later


async def test_resuming_from_an_unknown_id_starts_lagged(store: Store, hub: EventHub) -> None:
    async with hub.subscribe(EventFilter()) as first:
        await submit_one(store)
        [newest] = await take(first, 1)
    *head, tail = newest.id.split("-")
    future = "-".join([*head, str(int(tail) + 1_000_000)])
    for after in (future, "not-an-id"):
        async with hub.subscribe(EventFilter(), after=after) as sub:
            assert await sub.next(5.0) is None and sub.lagged
            sub.lagged = False
            task_id = await submit_one(store)
            [event] = await take(sub, 1)
            assert event.task_id == task_id


async def _async(value: bool) -> bool:
    return value
