"""One concurrency limit per upstream, shared by every worker: real API and worker processes on
every backend pairing, calling the Tencent VOD stand-in, which refuses (as the real service
does, ``RequestLimitExceeded``) beyond its cap."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from genqueue import Client, TaskStatus
from genqueue.backends import open_store
from genqueue.models import LimitStatus
from genqueue.settings import load_settings
from tests.helpers import Cluster, wait_until
from tests.video_support import Standin, running_standin

pytestmark = pytest.mark.system

CLOUD = {"prompt": "一个小男孩在街上跑步", "provider": "cloud", "duration_s": 5}


def limits_env(standin: Standin, **rule: object) -> dict[str, str]:
    policy = {"min": 1, "decrease": 1, "recovery_interval_s": 600, "min_cut_gap_s": 0} | rule
    return standin.env() | {"GENQUEUE_LIMITS": json.dumps({"video-cloud": policy})}


def limit_of(cluster: Cluster) -> LimitStatus:
    status = configured_limit(cluster)
    assert status is not None, "no limiter for video-cloud"
    return status


def configured_limit(cluster: Cluster) -> LimitStatus | None:
    """The limiter of video-cloud, once a worker configured it."""

    async def read() -> LimitStatus | None:
        store = await open_store(cluster.store_url, load_settings(data_dir=cluster.data_dir))
        try:
            return next((s for s in await store.limits() if s.resource == "video-cloud"), None)
        finally:
            await store.aclose()

    return asyncio.run(read())


def blocked_until(cluster: Cluster) -> datetime | None:
    status = configured_limit(cluster)
    return None if status is None else status.blocked_until


def standin_counts(standin: Standin) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(f"{standin.url}/admin/limits", timeout=5).json()
    return counts


# Every store, and both kinds of broker (pull and RabbitMQ): the limiter lives in the store.
@pytest.mark.parametrize("backend", ["sqlite", "redis", "amqp-postgres"])
def test_workers_converge_on_the_upstreams_cap_together(tmp_path: Path, backend: str) -> None:
    # Jobs long enough that the first four calls overlap at the stand-in whatever the timing.
    with running_standin(job_s=1.0, max_concurrent=2) as standin:
        cluster = Cluster(tmp_path, backend=backend, extra_env=limits_env(standin, start=4, max=4))
        try:
            cluster.start_api()
            cluster.start_worker(concurrency=3)
            cluster.start_worker(concurrency=3)
            with Client(cluster.url) as client:
                tasks = [client.submit("video.generate", CLOUD) for _ in range(12)]
                done = [client.wait(t.id, timeout_s=90) for t in tasks]
            assert all(d.status == TaskStatus.SUCCEEDED for d in done), cluster.logs()
            assert all(d.attempts == 1 for d in done)  # a refusal spends no attempt
            status = limit_of(cluster)
            # 4 -> 3 (-> 2): one cut per burst of refusals (the epoch rule). 3 can hold: a
            # permit outlives its stand-in job by the poll and the download.
            assert status.limit in (2.0, 3.0) and status.cuts == 4 - status.limit, status
            assert (status.in_flight, status.waiting) == (0, 0)
            counts = standin_counts(standin)
            assert counts["accepted"] == 12 and counts["refused"] > 0
            assert counts["refused"] == status.throttles <= 12, (counts, status)
        finally:
            cluster.stop()


def test_a_killed_workers_permit_comes_back_with_its_lease(tmp_path: Path) -> None:
    with running_standin(job_s=0.3) as standin:
        cluster = Cluster(tmp_path, extra_env=limits_env(standin, start=1, max=1))
        try:
            cluster.start_api()
            victim = cluster.start_worker(concurrency=2)
            with Client(cluster.url) as client:
                # The stand-in takes 10 x job_s over a "[slow]" prompt: the victim holds the
                # only permit for 3 s, long enough to be killed holding it.
                first = client.submit("video.generate", CLOUD | {"prompt": "[slow] 小男孩"})
                wait_until(lambda: client.get(first.id).status == TaskStatus.RUNNING)
                second = client.submit("video.generate", CLOUD)
                wait_until(lambda: client.get(second.id).waiting_for == "video-cloud")
                victim.send_signal(signal.SIGKILL)
                victim.wait(10)
                cluster.start_worker(concurrency=2)
                done = [client.wait(t.id, timeout_s=60) for t in (first, second)]
            assert [d.status for d in done] == [TaskStatus.SUCCEEDED] * 2, cluster.logs()
            status = limit_of(cluster)
            assert (status.in_flight, status.waiting, status.cuts) == (0, 0, 0)
        finally:
            cluster.stop()


def test_retry_after_holds_back_every_worker(tmp_path: Path) -> None:
    with running_standin(job_s=0.2) as standin:
        fault = {"status": 429, "retry_after_s": 1.5, "count": 1}
        httpx.post(f"{standin.url}/admin/faults", json=fault, timeout=5).raise_for_status()
        cluster = Cluster(tmp_path, extra_env=limits_env(standin, start=3, max=3))
        try:
            cluster.start_api()
            cluster.start_worker(concurrency=3)
            with Client(cluster.url) as client:
                first = client.submit("video.generate", CLOUD)
                refused = wait_until(lambda: blocked_until(cluster))
                others = [client.submit("video.generate", CLOUD) for _ in range(2)]
                done = [client.wait(t.id, timeout_s=60) for t in (first, *others)]
            assert all(d.status == TaskStatus.SUCCEEDED for d in done), cluster.logs()
            # Nobody started before the upstream's Retry-After had passed.
            assert all(d.started_at is not None and d.started_at >= refused for d in done[1:])
            assert done[0].attempts == 1 and limit_of(cluster).cuts == 1
        finally:
            cluster.stop()
