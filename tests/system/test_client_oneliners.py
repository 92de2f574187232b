"""The client's one-liners against real API and worker processes: ``run`` (submit, wait,
result), ``map`` (a batch followed live), ``stream`` (typed updates) and API keys."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from genqueue import AsyncClient, Client, TaskFailedError, TaskStatus, WaitTimeoutError
from genqueue.errors import ConfigError
from genqueue.previews import Preview
from genqueue.results import ImageResult
from genqueue.task_updates import TaskFinished, TaskProgress, TaskSnapshot, TaskStatusChange
from tests.helpers import Cluster, wait_for

pytestmark = pytest.mark.system

PICTURE = {"prompt": "a red fox in the snow", "width": 96, "height": 80, "steps": 4}


def test_run_returns_the_result_plain_or_typed(cluster: Cluster) -> None:
    cluster.start_worker(queues="debug,image")
    with Client(cluster.url) as client:
        assert client.run("debug.echo", {"word": "hello", "n": 3}) == {"word": "hello", "n": 3}
        picture = client.run("image.generate", PICTURE, result_type=ImageResult, user="ann")
    assert isinstance(picture, ImageResult)
    assert (picture.width, picture.height) == (96, 80)
    assert picture.image_url.endswith("image.png")


def test_run_raises_task_failed_error_carrying_the_task(cluster: Cluster) -> None:
    cluster.start_worker(queues="debug")
    with Client(cluster.url) as client:
        with pytest.raises(TaskFailedError) as failed:
            client.run("debug.fail", {"message": "no luck"})
        task = failed.value.task
        assert task.status == TaskStatus.FAILED and task.kind == "debug.fail"
        assert task.error is not None and "no luck" in task.error
        assert f"task {task.id} (debug.fail) failed: " in str(failed.value)
        with pytest.raises(TaskFailedError) as stopped:
            client.run("debug.sleep", {"seconds": 60}, cancel_after_s=0.3)
        assert stopped.value.task.status == TaskStatus.CANCELLED


async def test_run_gives_up_after_its_timeout_and_the_task_goes_on(cluster: Cluster) -> None:
    cluster.start_worker(queues="debug")
    async with AsyncClient(cluster.url) as client:
        with pytest.raises(WaitTimeoutError, match=r"still queued after 0\.5 s") as info:
            await client.run("debug.echo", {}, queue="nobody-serves-this", timeout_s=0.5)
        assert info.value.task is not None
        assert (await client.get(info.value.task.id)).status == TaskStatus.QUEUED


async def test_run_rides_out_an_api_restart(cluster: Cluster) -> None:
    cluster.start_worker(queues="debug")
    async with AsyncClient(cluster.url) as client:
        running = asyncio.create_task(
            client.run("debug.sleep", {"seconds": 2, "steps": 4}, timeout_s=60)
        )

        async def started() -> bool:
            page = await client.list_tasks(kind="debug.sleep", status="running")
            return bool(page.items)

        await wait_for(started, 20, 0.05, "the task to start")
        api = cluster.api
        assert api is not None
        api.terminate()
        api.wait(15)

        await asyncio.to_thread(cluster.start_api)
        assert await asyncio.wait_for(running, 60) == {"slept_s": 2}


def test_map_returns_results_in_input_order_with_a_progress_bar(
    cluster: Cluster, capfd: pytest.CaptureFixture[str]
) -> None:
    cluster.start_worker(queues="debug", concurrency=8)
    payloads = [{"seconds": 0.05 * (i % 4), "steps": 1} for i in range(24)]
    with Client(cluster.url) as client:
        results = client.map("debug.sleep", payloads, progress=True, user="bob")
        assert results == [{"slept_s": p["seconds"]} for p in payloads]
        assert client.list_tasks(user="bob", limit=50).items[0].batch_id is not None
        assert client.map("debug.echo", []) == []
    assert "24/24" in capfd.readouterr().err


def test_map_raises_the_first_failure_or_returns_it_in_place(cluster: Cluster) -> None:
    cluster.start_worker(queues="debug", concurrency=4)
    payloads: list[dict[str, Any]] = [
        {"fail_times": 0},
        {"fail_times": 1000, "message": "bad item"},
        {"fail_times": 1},
    ]
    with Client(cluster.url) as client:
        first, failed, last = client.map("debug.fail", payloads, return_exceptions=True)
        assert first == {"succeeded_on_attempt": 1} and last == {"succeeded_on_attempt": 2}
        assert isinstance(failed, TaskFailedError)
        assert failed.task.payload["message"] == "bad item"
        with pytest.raises(TaskFailedError) as info:
            client.map("debug.fail", payloads)
        assert info.value.task.payload["message"] == "bad item"
        assert info.value.task.batch_id is not None


async def test_async_map_returns_typed_results(cluster: Cluster) -> None:
    cluster.start_worker(queues="image", concurrency=2)
    prompts = ["a red fox", "a bowl of ramen", "a sailing boat"]
    async with AsyncClient(cluster.url) as client:
        pictures = await client.map(
            "image.generate",
            [{**PICTURE, "prompt": p, "seed": i} for i, p in enumerate(prompts)],
            result_type=ImageResult,
        )
    assert [p.seed for p in pictures] == [0, 1, 2]
    assert all(isinstance(p, ImageResult) and p.width == 96 for p in pictures)


def test_stream_yields_snapshot_progress_previews_and_the_end(cluster: Cluster) -> None:
    with Client(cluster.url) as client:
        task = client.submit("image.generate", PICTURE)  # queued: no image worker yet
        updates = []
        for update in client.stream(task.id):
            updates.append(update)
            if isinstance(update, TaskSnapshot):
                assert update.task.status == TaskStatus.QUEUED
                cluster.start_worker(queues="image")
    assert isinstance(updates[0], TaskSnapshot)
    assert any(isinstance(u, TaskStatusChange) and u.type == "task.started" for u in updates)
    fractions = [u.fraction for u in updates if isinstance(u, TaskProgress)]
    assert fractions and fractions == sorted(fractions)
    previews = [u for u in updates if isinstance(u, Preview)]
    assert previews and previews[-1].image().size[0] <= 96
    end = updates[-1]
    assert isinstance(end, TaskFinished) and end.task.status == TaskStatus.SUCCEEDED
    assert end.result(ImageResult).height == 80
    assert sum(isinstance(u, TaskFinished) for u in updates) == 1


async def test_async_stream_of_a_finished_task_is_its_snapshot_then_the_end(
    cluster: Cluster,
) -> None:
    cluster.start_worker(queues="debug")
    async with AsyncClient(cluster.url) as client:
        task = await client.submit("debug.fail", {"message": "over already"})
        await client.wait(task.id, timeout_s=30)
        updates = [u async for u in client.stream(task.id)]
    assert [type(u) for u in updates] == [TaskSnapshot, TaskFinished]
    last = updates[-1]
    assert isinstance(last, TaskFinished)
    with pytest.raises(TaskFailedError, match="over already"):
        last.result()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with ``{}``, keeping its Authorization header in ``seen`` (a list
    each server's handler class is given)."""

    seen: list[str | None]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        body = json.dumps({}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str | None]]]:
    """A real HTTP server on a free port that records the Authorization header of each call."""
    seen: list[str | None] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join(5)


async def test_an_api_key_is_sent_as_a_bearer_token(
    recorder: tuple[str, list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = recorder
    monkeypatch.delenv("GENQUEUE_API_KEY", raising=False)
    with Client(url) as client:
        client.health()
    with Client(url, api_key="gq_alpha\n") as client:  # as read from a file
        client.health()
    monkeypatch.setenv("GENQUEUE_API_KEY", "gq_from_env")
    async with AsyncClient(url) as aclient:
        await aclient.health()
    with Client(url, api_key="") as client:  # "" opts out of the environment's key
        client.health()
    assert seen == [None, "Bearer gq_alpha", "Bearer gq_from_env", None]
    with pytest.raises(ConfigError, match="one printable ASCII word"):
        Client(url, api_key="two words")
