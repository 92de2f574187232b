"""``image.diagnose`` end to end: an uploaded camera frame, diagnosed by a real worker (in a
batch, in a thread), its alerts on the event stream, and the annotated PNG served by the API."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from genqueue import AsyncClient, TaskStatus
from tests import diagnose_scenes as scenes
from tests.helpers import Cluster

pytestmark = pytest.mark.system


async def test_a_blurred_dark_frame_raises_alerts_and_an_annotated_png(cluster: Cluster) -> None:
    frame = scenes.dark(scenes.blurred(scenes.scene()))
    async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as http:
        answer = await http.post(
            "/v1/uploads", content=scenes.encode(frame), headers={"Content-Type": "image/png"}
        )
        assert answer.status_code == 201, answer.text
        payload = {"image": {"upload": answer.json()["id"]}, "camera_id": "gate-1"}
        async with AsyncClient(cluster.url) as client:
            task = await client.submit("image.diagnose", payload)
            alerts: list[dict[str, Any]] = []
            async with asyncio.timeout(60):
                async for event in client.events(task_id=task.id):
                    if event.event == "snapshot":
                        # Subscribed before any worker exists, so no event can be missed.
                        cluster.start_worker(queues="diagnosis")
                    elif event.event == "diagnosis.alert":
                        alerts.append(event.data["data"])
                    elif event.event in ("task.succeeded", "task.failed"):
                        break
            done = await client.wait(task.id, timeout_s=10)
        assert done.status == TaskStatus.SUCCEEDED, (done.error, cluster.logs())
        result = done.result
        assert result is not None and result["verdict"] == "alert"
        assert {"blur", "dark"} <= set(result["alerts"])
        assert [a["check"] for a in alerts] == result["alerts"]
        assert all(a["camera_id"] == "gate-1" and a["score"] is not None for a in alerts)
        png = await http.get(result["annotated_url"])
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
