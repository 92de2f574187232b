"""Live previews end to end: real API and worker processes, the event stream read as a client
reads it. ``image.generate`` streams ``task.preview`` events while it renders, on every store;
handlers on the event loop, in a thread and in a pool process get theirs through, few a second,
the last picture last."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from genqueue import AsyncClient, Client, TaskStatus
from genqueue.api.schemas import TaskPublic
from genqueue.client import Preview
from genqueue.previews import INTERVAL_S, MAX_BYTES, MAX_SIDE
from tests.helpers import Cluster, wait_until
from tests.preview_kinds import grey_of

pytestmark = pytest.mark.system

KINDS = "tests.preview_kinds"


def grey(preview: Preview) -> int:
    picture = preview.image().convert("L")
    assert picture.size == (preview.width, preview.height)
    return int(picture.getpixel((preview.width // 2, preview.height // 2)))  # type: ignore[arg-type]


def assert_few_enough(previews: list[Preview], task: TaskPublic) -> None:
    """At most one per interval of the run, plus the last picture when the run ends."""
    assert task.started_at is not None and task.finished_at is not None
    ran_s = (task.finished_at - task.started_at).total_seconds()
    assert 1 <= len(previews) <= ran_s / INTERVAL_S + 1
    seqs = [p.seq for p in previews]
    assert seqs == sorted(set(seqs)) and seqs[0] >= 1


@pytest.fixture(params=["sqlite", "redis", "amqp-postgres"])
def image_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """One deployment per store engine (SQLite, Redis, PostgreSQL): each keeps previews its
    own way."""
    cluster = Cluster(tmp_path, backend=request.param)
    try:
        cluster.start_api()
        cluster.start_worker(queues="image", concurrency=1)
        yield cluster
    finally:
        cluster.stop()


def test_image_generate_streams_previews_before_it_succeeds(image_cluster: Cluster) -> None:
    payload = {"prompt": "a forest by a lake at sunset", "width": 1536, "height": 1024}
    with Client(image_cluster.url) as client:
        task = client.submit("image.generate", {**payload, "steps": 100})
        seen: list[str] = []
        previews: list[Preview] = []
        for event in client.events(task_id=task.id):
            seen.append(event.event)
            if event.event == "task.preview":
                assert event.data["status"] == "running" and event.data["kind"] == "image.generate"
                previews.append(Preview.from_event(event))
            if event.event in ("task.succeeded", "task.failed"):
                break
        assert seen[-1] == "task.succeeded", image_cluster.logs()
        done = client.get(task.id)
    assert len(previews) >= 2, seen  # while it renders, not only at the end
    assert_few_enough(previews, done)
    for preview in previews:
        assert preview.content_type == "image/jpeg" and len(preview.data) <= MAX_BYTES
        assert (preview.width, preview.height) == (MAX_SIDE, round(MAX_SIDE * 1024 / 1536))
        assert preview.image().mode == "RGB"


@pytest.fixture(scope="module")
def kinds_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("previews"))
    try:
        cluster.start_api(["--kinds", KINDS])
        cluster.start_worker(queues="previews", kinds=KINDS, concurrency=3)
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.parametrize(
    "kind", ["test.preview-async", "test.preview-thread", "test.preview-process"]
)
def test_previews_come_from_every_executor_the_last_picture_last(
    kinds_cluster: Cluster, kind: str
) -> None:
    frames = 12
    with Client(kinds_cluster.url) as client:
        task = client.submit(kind, {"frames": frames, "frame_s": 0.1})
        previews = list(client.previews(task.id))  # ends by itself when the task finishes
        done = client.get(task.id)
    assert done.status == TaskStatus.SUCCEEDED, kinds_cluster.logs()
    assert_few_enough(previews, done)
    assert len(previews) >= 2  # 1.2 s of frames: some while it runs, not only the last
    greys = [grey(p) for p in previews]
    assert greys == sorted(greys) and abs(greys[-1] - grey_of(frames - 1)) <= 3
    assert {(p.width, p.height) for p in previews} == {(256, 192)}


@pytest.mark.parametrize(
    "kind", ["test.preview-async", "test.preview-thread", "test.preview-process"]
)
def test_a_picture_shown_before_a_long_step_is_seen_during_it(
    kinds_cluster: Cluster, kind: str, tmp_path: Path
) -> None:
    """One picture at once (too soon to send then), then a long step that never calls the
    context: the picture goes out when its time comes, not when the run ends."""
    gate = tmp_path / "gate"  # the long step ends once it exists
    with Client(kinds_cluster.url) as client:
        task = client.submit(kind, {"frames": 1, "frame_s": 0.0, "gate": str(gate)})
        try:
            seen = wait_until(lambda: client.get(task.id).preview, 30, 0.05, "the preview")
            assert client.get(task.id).status == TaskStatus.RUNNING
        finally:
            gate.touch()
        done = client.wait(task.id)
    assert seen.startswith("data:image/jpeg;base64,")
    assert done.status == TaskStatus.SUCCEEDED, kinds_cluster.logs()


async def test_the_async_client_yields_previews_until_the_task_finishes(
    kinds_cluster: Cluster,
) -> None:
    async with AsyncClient(kinds_cluster.url) as client:
        task = await client.submit("test.preview-process", {"frames": 6, "frame_s": 0.1})
        previews = [p async for p in client.previews(task.id)]
        assert (await client.get(task.id)).status == TaskStatus.SUCCEEDED
    assert previews and abs(grey(previews[-1]) - grey_of(5)) <= 3


def test_cli_submit_wait_keeps_the_latest_preview_in_a_file(
    kinds_cluster: Cluster, tmp_path: Path
) -> None:
    target = tmp_path / "latest.jpg"
    command = ["submit", "test.preview-thread", "frames=8", "--wait", "--preview", str(target)]
    run = subprocess.run(
        [sys.executable, "-m", "genqueue", *command, "--url", kinds_cluster.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=kinds_cluster.env,
    )
    assert run.returncode == 0, run.stderr
    with Image.open(target) as picture:
        assert picture.format == "JPEG"
        assert abs(int(picture.convert("L").getpixel((5, 5))) - grey_of(7)) <= 3  # type: ignore[arg-type]
