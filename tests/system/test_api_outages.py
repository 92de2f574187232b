"""The API rides out outages: 503 (naming the backend) while one is down, healthy again by
itself afterwards, and event streams that resume from ``Last-Event-ID`` with nothing lost or
repeated, across a backend outage or an API process killed and restarted."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis

from genqueue import Client
from genqueue.backends import open_store
from genqueue.backends.redis.connection import split_url
from genqueue.events import EventFilter, EventHub
from genqueue.settings import load_settings
from genqueue.sse import ServerEvent
from tests.contract.test_store import submit_one
from tests.helpers import Cluster, wait_for, wait_until
from tests.servers import PrivatePostgres, PrivateRedis
from tests.test_events import take

pytestmark = pytest.mark.system

DOWN_WITHIN_S = 6.0  # a request that needs a dead backend answers 503 within this
BACK_WITHIN_S = 15.0  # and 200 within this once the backend is back
SLOW = {"kind": "debug.sleep", "payload": {"seconds": 6.0, "steps": 12}}


def timed_get(url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(url, timeout=DOWN_WITHIN_S + 5)
    return response, time.monotonic() - started


def answers_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_answering(*urls: str) -> None:
    for url in urls:
        wait_until(lambda: answers_200(url), BACK_WITHIN_S, 0.1, f"{url} to answer")  # noqa: B023


def test_the_api_answers_503_while_redis_is_down_and_recovers_by_itself(tmp_path: Path) -> None:
    with PrivateRedis(tmp_path / "redis") as server:
        urls = {"GENQUEUE_STORE": server.url, "GENQUEUE_BROKER": server.url}
        cluster = Cluster(tmp_path, extra_env=urls)
        try:
            cluster.start_api()
            task = httpx.post(f"{cluster.url}/v1/tasks", json=SLOW, timeout=10).json()
            task_url = f"{cluster.url}/v1/tasks/{task['id']}"

            server.kill()
            for url in (task_url, f"{cluster.url}/health"):
                response, took_s = timed_get(url)
                assert response.status_code == 503, response.text
                assert took_s < DOWN_WITHIN_S, f"{url} took {took_s:.1f} s"
                assert int(response.headers["Retry-After"]) > 0
            body = httpx.get(task_url, timeout=10).json()
            assert body["error"] == "backend_unavailable" and "Redis" in body["message"]
            health = httpx.get(f"{cluster.url}/health", timeout=10).json()
            assert health["status"] == "degraded"
            assert "Redis" in health["store"] and "Redis" in health["broker"]
            refused = httpx.post(f"{cluster.url}/v1/tasks", json=SLOW, timeout=10)
            assert refused.status_code == 503 and "Redis" in refused.json()["message"]

            server.start()
            wait_answering(task_url, f"{cluster.url}/health")
            for _ in range(20):  # every pooled connection works again, not just one
                again = httpx.get(task_url, timeout=10)
                assert again.status_code == 200 and again.json()["id"] == task["id"], again.text
            assert cluster.api is not None and cluster.api.poll() is None  # never restarted
        finally:
            cluster.stop()


def server_pids(pg: PrivatePostgres) -> list[int]:
    """The postmaster of ``pg`` and its children (backends, checkpointer...)."""

    def pgrep(*args: str) -> list[int]:
        out = subprocess.run(["pgrep", *args], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    parents = pgrep("-f", str(pg.data))
    return parents + [child for pid in parents for child in pgrep("-P", str(pid))]


def test_the_api_answers_503_within_seconds_while_postgres_stalls(tmp_path: Path) -> None:
    """A stalled server (paused, not dead) gives no error for drivers to see: the API's own
    deadline answers 503 instead of hanging until the client gives up."""
    with PrivatePostgres(tmp_path / "pg") as pg:
        url = f"{pg.url}?schema=gq"
        cluster = Cluster(tmp_path, extra_env={"GENQUEUE_STORE": url, "GENQUEUE_BROKER": url})
        paused: list[int] = []
        try:
            cluster.start_api()
            task = httpx.post(f"{cluster.url}/v1/tasks", json=SLOW, timeout=10).json()
            task_url = f"{cluster.url}/v1/tasks/{task['id']}"
            paused = server_pids(pg)
            assert paused, "no PostgreSQL processes found"
            for pid in paused:
                os.kill(pid, signal.SIGSTOP)
            for url in (task_url, f"{cluster.url}/health"):
                response, took_s = timed_get(url)
                assert response.status_code == 503, response.text
                assert took_s < DOWN_WITHIN_S, f"{url} took {took_s:.1f} s"
                assert "PostgreSQL" in response.text or "postgresql" in response.text
            for pid in paused:
                os.kill(pid, signal.SIGCONT)
            paused = []
            wait_answering(task_url, f"{cluster.url}/health")
        finally:
            for pid in paused:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            cluster.stop()


async def test_the_event_hub_resumes_after_a_redis_outage_and_logs_it_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="genqueue.events")

    def count(text: str) -> int:
        return sum(text in r.getMessage() for r in caplog.records)

    async def logged(text: str, times: int = 1) -> bool:
        return count(text) >= times

    with PrivateRedis(tmp_path / "redis") as server:
        store = await open_store(server.url, load_settings(data_dir=tmp_path))
        hub = EventHub(store)
        await hub.start()
        try:
            async with hub.subscribe(EventFilter()) as sub:
                before = [await submit_one(store) for _ in range(2)]
                got = await take(sub, 2)
                server.kill()
                await wait_for(lambda: logged("still down", 2), 20, message="failed reopens")
                server.start()
                after = [await submit_one(store) for _ in range(2)]
                got += await take(sub, 2)
            await wait_for(lambda: logged("open again"), 20, message="the feed back")
        finally:
            await hub.aclose()
            await store.aclose()
    assert [e.task_id for e in got] == before + after
    assert count("event feed lost") == 1 and count("open again") == 1


class Follower:
    """Follows one task's event stream with the blocking client, in a thread, until the task
    succeeds (the client reconnects by itself when the stream breaks)."""

    def __init__(self, url: str, task_id: str) -> None:
        self.events: list[ServerEvent] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(url, task_id), daemon=True)
        self._thread.start()

    def _run(self, url: str, task_id: str) -> None:
        try:
            with Client(url) as client:
                for event in client.events(task_id=task_id):
                    self.events.append(event)
                    if event.event == "task.succeeded":
                        return
        except BaseException as exc:
            self.error = exc

    def task_events(self) -> list[tuple[str, str]]:
        """(event id, type) of every task event received, in order."""
        return [(e.data["id"], e.event) for e in self.events if e.event.startswith("task.")]

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"still following after {timeout_s} s"
        assert self.error is None, repr(self.error)


def logged_events(cluster: Cluster, task_id: str) -> list[tuple[str, str]]:
    """(event id, type) of the task's events, read from the store's own log."""
    url = cluster.store_url
    if url.startswith("sqlite"):
        with sqlite3.connect(cluster.data_dir / "genqueue.db") as conn:
            rows = conn.execute(
                "SELECT id, type FROM events WHERE task_id = ? ORDER BY id", (task_id,)
            ).fetchall()
        return [(str(event_id), kind) for event_id, kind in rows]
    if url.startswith("postgres"):
        schema = parse_qs(urlsplit(url).query)["schema"][0]
        sql = f"SELECT id, type FROM \"{schema}\".events WHERE task_id = '{task_id}' ORDER BY id"
        out = subprocess.run(
            ["psql", url.split("?")[0], "-qAtF", " ", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return [(line.split()[0], line.split()[1]) for line in out.splitlines() if line]
    plain, prefix = split_url(url)
    with redis.Redis.from_url(plain, decode_responses=True) as client:
        entries = client.xrange(f"{prefix}:events")
    return [(entry_id, f["type"]) for entry_id, f in entries if f["task_id"] == task_id]


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"])
def test_an_event_stream_resumes_across_an_api_restart_without_gaps_or_repeats(
    tmp_path: Path, backend: str
) -> None:
    cluster = Cluster(tmp_path, backend=backend)
    try:
        cluster.start_api()
        task_id = httpx.post(f"{cluster.url}/v1/tasks", json=SLOW, timeout=10).json()["id"]
        follower = Follower(cluster.url, task_id)
        wait_until(lambda: follower.events, 10, 0.02, "the snapshot")
        cluster.start_worker()

        wait_until(lambda: len(follower.task_events()) >= 3, 30, 0.02, "the first events")
        assert cluster.api is not None
        cluster.api.send_signal(signal.SIGKILL)
        cluster.api.wait(10)
        seen = len(follower.task_events())
        # Events committed while no API runs (the first is the queued one, not streamed).
        wait_until(
            lambda: len(logged_events(cluster, task_id)) - 1 >= seen + 2,
            20,
            0.05,
            "events while the API is down",
        )
        cluster.start_api()  # the same port
        follower.join(60)

        received = follower.task_events()
        logged = logged_events(cluster, task_id)
        assert logged[0][1] == "task.queued"  # before the stream opened: in the snapshot
        assert received == logged[1:], f"received {received}\nlogged {logged}"
        assert received[-1][1] == "task.succeeded"
        assert not [e for e in follower.events if e.event == "lagged"]
        assert [e.event for e in follower.events].count("snapshot") == 1
    finally:
        cluster.stop()


def test_resuming_from_an_event_the_store_no_longer_has_says_lagged_then_snapshot(
    cluster: Cluster,
) -> None:
    task_id = httpx.post(f"{cluster.url}/v1/tasks", json=SLOW, timeout=10).json()["id"]
    headers = {"Last-Event-ID": "123456789"}  # never assigned by this store
    url = f"{cluster.url}/v1/events"
    frames: list[str] = []
    with httpx.stream("GET", url, params={"task_id": task_id}, headers=headers) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                frames.append(line.removeprefix("event: "))
            if len(frames) == 2:
                break
    assert frames == ["lagged", "snapshot"]
