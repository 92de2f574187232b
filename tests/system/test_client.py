"""The async client, the CLI and `genqueue up` against real processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from genqueue import AsyncClient, Client, TaskStatus
from genqueue.errors import IdempotencyConflictError, InvalidInputError, TaskNotFoundError
from tests.helpers import Cluster, free_port, wait_until

pytestmark = pytest.mark.system


async def test_async_client_submits_streams_and_waits(cluster: Cluster) -> None:
    cluster.start_worker()
    async with AsyncClient(cluster.url) as client:
        task = await client.submit("debug.sleep", {"seconds": 0.3, "steps": 3}, user="eve")
        kinds = []
        async for event in client.events(user="eve"):
            kinds.append(event.event)
            if event.event == "task.succeeded":
                break
        assert "task.progress" in kinds
        done = await client.wait(task.id, timeout_s=10)
        assert done.status == TaskStatus.SUCCEEDED and done.result == {"slept_s": 0.3}
        batch = await client.submit_batch([{"kind": "debug.echo", "payload": {"i": 1}}])
        assert (await client.get_batch(batch.id)).size == 1
        assert [q.name for q in await client.queues()] == [
            "debug",
            "diagnosis",
            "features",
            "image",
            "video",
        ]


def test_client_raises_typed_errors(cluster: Cluster) -> None:
    with Client(cluster.url) as client:
        with pytest.raises(TaskNotFoundError):
            client.get("missing")
        with pytest.raises(InvalidInputError) as info:
            client.submit("image.generate", {"prompt": "x", "width": 100000})
        assert [p.field for p in info.value.problems] == ["payload.width"]
        client.submit("debug.echo", {"a": 1}, idempotency_key="k")
        with pytest.raises(IdempotencyConflictError):
            client.submit("debug.echo", {"a": 2}, idempotency_key="k")


def test_cli_submit_wait_prints_the_result(cluster: Cluster) -> None:
    cluster.start_worker()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "genqueue",
            "submit",
            "debug.echo",
            "word=hello",
            "n=3",
            "--wait",
            "--url",
            cluster.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=cluster.env,
    )
    assert run.returncode == 0, run.stderr
    assert '"status": "succeeded"' in run.stdout and '"word": "hello"' in run.stdout
    listing = subprocess.run(
        [sys.executable, "-m", "genqueue", "queues", "--url", cluster.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=cluster.env,
    )
    assert "debug" in listing.stdout and "image" in listing.stdout


def test_up_serves_the_console_and_makes_a_real_picture(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "GENQUEUE_DATA_DIR": str(tmp_path)}
    with open(tmp_path / "up.log", "wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "genqueue", "up", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 30, 0.1, "genqueue up to answer")
        page = httpx.get(url).text  # the console's shell and the module it runs
        assert '<main id="view"' in page and "/static/js/main.js" in page
        assert httpx.get(f"{url}/static/js/main.js").status_code == 200
        with Client(url) as client:
            task = client.submit(
                "image.generate",
                {"prompt": "a red fox in the snow", "width": 96, "height": 80, "steps": 3},
            )
            done = client.wait(task.id, timeout_s=60)
        assert done.status == TaskStatus.SUCCEEDED, done.error
        assert done.result is not None
        png = httpx.get(url + done.result["image_url"])
        assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
        assert (done.result["width"], done.result["height"]) == (96, 80)
        assert "genqueue is up" in (tmp_path / "up.log").read_text()
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            up.kill()


async def test_events_a_handler_raises_reach_the_event_stream_in_order(cluster: Cluster) -> None:
    cluster.start_worker()
    async with AsyncClient(cluster.url) as client:
        task = await client.submit("debug.emit", {"event_type": "camera.alert", "count": 3})
        seen = []
        async for event in client.events(task_id=task.id):
            if event.event == "camera.alert":
                seen.append(event.data["data"]["n"])
            if event.event == "task.succeeded":
                break
        assert seen == [0, 1, 2]
        bad = await client.submit("debug.emit", {"event_type": "task.succeeded"})
        failed = await client.wait(bad.id, timeout_s=20)
        assert failed.status == TaskStatus.FAILED
        assert failed.error is not None and "not task.*" in failed.error


def test_similar_prompts_find_past_results_through_the_api(cluster: Cluster) -> None:
    cluster.start_worker(queues="image")
    with Client(cluster.url) as client:
        prompts = ["a red fox in the snow", "a bowl of ramen", "a sailing boat at dawn"]
        tasks = [
            client.submit("image.generate", {"prompt": p, "width": 64, "height": 64, "steps": 1})
            for p in prompts
        ]
        for task in tasks:
            assert client.wait(task.id, timeout_s=60).status == TaskStatus.SUCCEEDED
    answer = httpx.get(
        f"{cluster.url}/v1/prompts/similar", params={"q": "noodle soup", "k": 2}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    hits = answer.json()
    assert len(hits) == 2
    assert hits[0]["task"]["id"] == tasks[1].id
    assert hits[0]["task"]["result"]["image_url"].endswith("image.png")
    assert hits[0]["score"] > hits[1]["score"]
    empty = httpx.get(f"{cluster.url}/v1/prompts/similar", params={"q": ""}, timeout=10)
    assert empty.status_code == 422 and empty.json()["fields"][0]["field"] == "q"


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_up_takes_its_workers_down_with_it(tmp_path: Path, how: signal.Signals) -> None:
    port = free_port()
    env = {**os.environ, "GENQUEUE_DATA_DIR": str(tmp_path)}
    with open(tmp_path / "up.log", "wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "genqueue", "up", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with Client(f"http://127.0.0.1:{port}") as client:

            def worker_pids() -> list[int] | None:
                assert up.poll() is None, (tmp_path / "up.log").read_text()
                try:
                    online = [w.pid for w in client.workers() if w.status == "online"]
                except httpx.HTTPError:
                    return None
                return online if len(online) == 2 else None

            pids = wait_until(worker_pids, 30, 0.1, "2 workers online")
        up.send_signal(how)

        def gone(pid: int) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # not our child, but reap if it is
            return False

        wait_until(lambda: all(gone(p) for p in pids), 30, 0.1, "the workers to exit")
    finally:
        if up.poll() is None:
            up.kill()
        up.wait(10)
