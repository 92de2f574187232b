"""Several machines, simulated: 2 API processes and 3 workers sharing one Redis."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from genqueue import Client, TaskStatus
from genqueue.client import ServerEvent
from tests.helpers import Cluster, wait_until

pytestmark = [pytest.mark.system, pytest.mark.redis]

TASKS_PER_API = 150


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, backend="redis")
    c.start_api()
    yield c
    c.stop()


def collect_events(url: str, user: str, into: list[ServerEvent]) -> None:
    """Record a user's events as one API streams them, until that API goes away."""
    with Client(url) as client, contextlib.suppress(httpx.HTTPError):
        for event in client.events(user=user):
            into.append(event)


def finished(client: Client, batch_id: str) -> bool:
    return client.get_batch(batch_id).finished


def streamed(events: list[ServerEvent], kind: str, task_ids: set[str]) -> bool:
    return task_ids <= {e.data["task_id"] for e in events if e.event == kind}


def test_two_apis_three_workers_one_killed_every_task_once_events_everywhere(
    redis_cluster: Cluster,
) -> None:
    cluster = redis_cluster
    url_a, url_b = cluster.url, cluster.start_another_api()
    seen: dict[str, list[ServerEvent]] = {url_a: [], url_b: []}
    for url in (url_a, url_b):
        threading.Thread(target=collect_events, args=(url, "multi", seen[url]), daemon=True).start()
        # Probe tasks until one is streamed: then the stream is connected (a probe submitted
        # before the stream subscribed is never seen, so one is not enough).
        with Client(url) as client:

            def probe_seen(client: Client = client, url: str = url) -> bool:
                probe = client.submit("debug.echo", {"probe": url}, user="multi")
                client.cancel(probe.id)
                return any(e.event == "task.queued" for e in seen[url])

            wait_until(probe_seen, 15, 0.2, "the stream to connect")

    with Client(url_a) as a, Client(url_b) as b:
        batch_a = a.submit_batch(
            [{"kind": "debug.sleep", "payload": {"seconds": 0.05, "steps": 1}}] * TASKS_PER_API,
            user="multi",
        )
        batch_b = b.submit_batch(
            [{"kind": "debug.sleep", "payload": {"seconds": 0.05, "steps": 1}}] * TASKS_PER_API,
            user="multi",
        )
        victim = cluster.start_worker(name="victim", concurrency=4)
        cluster.start_worker(name="w2", concurrency=4)
        cluster.start_worker(name="w3", concurrency=4)

        def victim_busy() -> bool:
            workers = {w.name: w for w in a.workers()}
            return "victim" in workers and len(workers["victim"].running) > 0

        wait_until(victim_busy, 30, 0.02, "the victim to hold tasks")
        victim.send_signal(signal.SIGKILL)
        for client, batch_id in ((a, batch_a.id), (b, batch_b.id)):
            wait_until(partial(finished, client, batch_id), 90, 0.2, "the batch to finish")
            assert client.get_batch(batch_id).counts[TaskStatus.SUCCEEDED] == TASKS_PER_API

    all_ids = set(batch_a.task_ids) | set(batch_b.task_ids)
    recorded = cluster.succeeded_counts()
    assert {i: recorded.get(i) for i in all_ids} == dict.fromkeys(all_ids, 1)
    for url in (url_a, url_b):
        # Each API streamed the successes of tasks submitted through the other one too.
        wait_until(
            partial(streamed, seen[url], "task.succeeded", all_ids),
            30,
            0.1,
            f"{url} to stream every success",
        )
