"""video.generate end to end: real API and worker processes, the MP4 fetched back by its URL;
the cloud provider through the Tencent VOD stand-in, rate-limited on purpose."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from genqueue import Client, TaskStatus
from tests.helpers import Cluster
from tests.video_support import running_standin

pytestmark = pytest.mark.system


def fetch_mp4(cluster: Cluster, url: str) -> bytes:
    response = httpx.get(f"{cluster.url}{url}", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp"
    return response.content


def test_local_video_is_generated_and_served_as_mp4(cluster: Cluster) -> None:
    cluster.start_worker()
    with Client(cluster.url) as client:
        payload = {"prompt": "a lighthouse at sunset", "duration_s": 1, "resolution": "240p"}
        task = client.submit("video.generate", payload | {"fps": 12, "seed": 1})
        done = client.wait(task.id, timeout_s=60)
    assert done.status == TaskStatus.SUCCEEDED, (done.error, cluster.logs())
    assert done.result is not None
    assert (done.result["width"], done.result["height"], done.result["frames"]) == (426, 240, 12)
    video = fetch_mp4(cluster, done.result["video_url"])
    assert len(video) == done.result["file_size"]


def test_rate_limited_cloud_video_is_retried_without_spending_attempts(tmp_path: Path) -> None:
    with running_standin() as standin:
        for fault in ({"status": 429, "count": 2}, {"code": "RequestLimitExceeded"}):
            httpx.post(f"{standin.url}/admin/faults", json=fault).raise_for_status()
        cluster = Cluster(tmp_path, extra_env=standin.env())
        try:
            cluster.start_api()
            cluster.start_worker()
            with Client(cluster.url) as client:
                payload = {"prompt": "一个小男孩在街上跑步", "provider": "cloud", "duration_s": 5}
                task = client.submit("video.generate", payload)
                done = client.wait(task.id, timeout_s=60)
            assert done.status == TaskStatus.SUCCEEDED, (done.error, cluster.logs())
            assert done.attempts == 1  # three rate limits, none of them counted
            assert done.result is not None and done.result["provider"] == "cloud"
            fetch_mp4(cluster, done.result["video_url"])
            stats = httpx.get(f"{standin.url}/admin/stats").json()
            assert stats["calls"]["CreateAigcVideoTask"] == 4 and stats["faults_pending"] == 0
        finally:
            cluster.stop()
