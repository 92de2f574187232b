"""What a task page needs from the API, end to end (real API and worker processes): the task's
history before the page opened (``GET /v1/tasks/{id}/events``), a running task's latest
preview in one read, and a queued task's stream telling when its place in line moves."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from genqueue import Client, TaskStatus
from genqueue.api.schemas import TaskPublic
from tests.helpers import Cluster, line_and_previews, wait_until

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with line_and_previews(tmp_path_factory.mktemp("task-page-api")) as cluster:
        yield cluster


def test_task_events_are_a_finished_tasks_history_oldest_first(cluster: Cluster) -> None:
    with Client(cluster.url) as client:
        task = client.submit("debug.sleep", {"seconds": 0.1, "steps": 2})
        assert client.wait(task.id).status == TaskStatus.SUCCEEDED, cluster.logs()
    events = httpx.get(f"{cluster.url}/v1/tasks/{task.id}/events").json()
    types = [e["type"] for e in events]
    assert types[:2] == ["task.queued", "task.started"] and types[-1] == "task.succeeded"
    assert set(types[2:-1]) <= {"task.progress"}  # progress is sent at a bounded rate
    assert {e["task_id"] for e in events} == {task.id}
    newest = httpx.get(f"{cluster.url}/v1/tasks/{task.id}/events", params={"limit": 1}).json()
    assert [e["id"] for e in newest] == [events[-1]["id"]]
    assert httpx.get(f"{cluster.url}/v1/tasks/nope/events").status_code == 404


def shown(task: TaskPublic) -> TaskPublic | None:
    return task if task.preview else None


def test_a_running_task_read_carries_its_latest_preview(cluster: Cluster, tmp_path: Path) -> None:
    gate = tmp_path / "gate"  # the run ends once it exists
    with Client(cluster.url) as client:
        payload = {"frames": 3, "frame_s": 0.01, "gate": str(gate)}
        task = client.submit("test.preview-async", payload)
        read = wait_until(lambda: shown(client.get(task.id)), 30, 0.05, "a preview in a read")
        with contextlib.closing(client.events(task_id=task.id)) as stream:
            snapshot = next(stream)
        listed = client.list_tasks(kind="test.preview-async").items
        gate.touch()
        done = client.wait(task.id)
    assert read.status == TaskStatus.RUNNING, cluster.logs()
    assert read.preview is not None and read.preview.startswith("data:image/jpeg;base64,")
    assert snapshot.event == "snapshot" and snapshot.data["preview"].startswith("data:image/")
    assert [t.preview for t in listed] == [None]  # listings stay cheap
    assert done.status == TaskStatus.SUCCEEDED and done.preview is None


def test_a_queued_tasks_stream_sends_its_new_place_when_the_task_ahead_starts(
    cluster: Cluster,
) -> None:
    with Client(cluster.url) as client:
        busy = client.submit("debug.sleep", {"seconds": 60, "steps": 60})
        wait_until(lambda: client.get(busy.id).status == TaskStatus.RUNNING, 30, 0.05, "a run")
        ahead = client.submit("debug.sleep", {"seconds": 60, "steps": 60})
        task = client.submit("debug.echo", {"n": 1})
        places: list[int | None] = []
        with contextlib.closing(client.events(task_id=task.id)) as stream:
            for frame in stream:
                if frame.event == "snapshot":
                    places.append(frame.data["position"])
                    if places == [2]:
                        client.cancel(busy.id)  # frees the worker for the task ahead
                    else:
                        break
        started = client.get(ahead.id)
        client.cancel(ahead.id)
        assert client.wait(task.id).status == TaskStatus.SUCCEEDED
    assert started.status == TaskStatus.RUNNING
    assert places == [2, 1]
