"""Backend outages for real, on every pairing: a worker keeps its process, waits the outage
out, and resumes by itself; every accepted task succeeds and is recorded once.

Redis and PostgreSQL outages use private servers (``tests/servers.py``), never the shared
ones; RabbitMQ outages stop the shared broker's app and always start it again.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import pytest

from genqueue.artifacts import ArtifactStore
from genqueue.backends import open_broker, open_store
from genqueue.backends.sqlite.db import busy_timeout_s
from genqueue.contracts import Claim
from genqueue.dispatch import Dispatcher, TaskRequest
from genqueue.errors import BackendUnavailableError
from genqueue.kinds import load_kinds
from genqueue.models import TaskStatus
from genqueue.retry import OUTAGE_BACKOFF
from genqueue.settings import load_settings
from genqueue.sweeper import Sweeper
from tests.helpers import (
    AMQP_START,
    Cluster,
    backend_url,
    let_time_pass,
    rabbitmq_back_up,
    rabbitmqctl,
    require_service,
    wait_for,
    wait_until,
)
from tests.servers import PrivatePostgres, PrivateRedis, SqliteLock

pytestmark = pytest.mark.system

TASKS = 40
SLEEP = {"kind": "debug.sleep", "payload": {"seconds": 0.3, "steps": 3}}
BACK_ONLINE_S = 15.0


def workers_online(cluster: Cluster) -> int:
    """Online workers as the API reports them (0 while the API itself cannot answer)."""
    try:
        reply = httpx.get(f"{cluster.url}/v1/workers", timeout=5)
    except httpx.HTTPError:
        return 0
    if reply.status_code != 200:
        return 0
    return sum(1 for w in reply.json() if w["status"] == "online")


def batch_counts(cluster: Cluster, batch_id: str) -> dict[str, int]:
    try:
        reply = httpx.get(f"{cluster.url}/v1/batches/{batch_id}", timeout=5)
    except httpx.HTTPError:
        return {}
    counts: dict[str, int] = reply.json()["counts"] if reply.status_code == 200 else {}
    return counts


def workers_stay_up(clusters: Cluster | Sequence[Cluster], seconds: float) -> None:
    """Wait ``seconds`` for a worker process to exit (time itself is the subject here: the
    outage lasts that long) and fail if one does."""
    every = [clusters] if isinstance(clusters, Cluster) else list(clusters)
    deadline = time.monotonic() + seconds
    for cluster in every:
        for proc in cluster.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
            assert proc.poll() is None, f"a worker exited during the outage:\n{cluster.logs()}"


def degraded_reasons(cluster: Cluster) -> list[str]:
    try:
        workers = httpx.get(f"{cluster.url}/v1/workers", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return []
    return [w["reason"] for w in workers if w["status"] == "degraded"]


def ride_out(
    clusters: Cluster | Sequence[Cluster],
    down: Callable[[], object],
    up: Callable[[], object],
    down_s: float,
    *,
    says_degraded: str | None = None,
) -> None:
    """Two workers mid-run (per cluster: several clusters can share one outage) through
    ``down``, ``down_s`` of outage and ``up``: every task succeeds once, no worker exits, both
    are online again soon after the backend returns. With ``says_degraded`` (the store stays
    up), both report themselves degraded meanwhile, with a reason that contains it."""
    every = [clusters] if isinstance(clusters, Cluster) else list(clusters)
    batches = {}
    for cluster in every:
        cluster.start_api()
        for _ in range(2):
            cluster.start_worker(concurrency=4)
    for cluster in every:
        _wait_online(cluster, 30, "two workers online")
        reply = httpx.post(f"{cluster.url}/v1/batches", json={"tasks": [SLEEP] * TASKS}, timeout=30)
        assert reply.status_code == 201, reply.text
        batches[cluster.url] = reply.json()["id"]
    for cluster in every:
        _wait_succeeded(cluster, batches[cluster.url], 4, 30)
    down()
    try:
        if says_degraded is not None:
            for cluster in every:
                reasons = _wait_degraded(cluster)
                assert all(says_degraded in reason for reason in reasons), reasons
        workers_stay_up(every, down_s)
    finally:
        up()
    back = time.monotonic()
    for cluster in every:
        _wait_online(cluster, BACK_ONLINE_S, "both workers online again")
    assert time.monotonic() - back <= BACK_ONLINE_S
    for cluster in every:
        _wait_succeeded(cluster, batches[cluster.url], TASKS, 90)
        for proc in cluster.workers:
            assert proc.poll() is None, cluster.logs()
        recorded = cluster.succeeded_counts()
        assert len(recorded) == TASKS and set(recorded.values()) == {1}, recorded


def _wait_online(cluster: Cluster, timeout_s: float, message: str) -> None:
    wait_until(lambda: workers_online(cluster) == 2, timeout_s, 0.1, message)


def _wait_succeeded(cluster: Cluster, batch_id: str, n: int, timeout_s: float) -> None:
    def enough() -> bool:
        return batch_counts(cluster, batch_id).get("succeeded", 0) >= n

    try:
        wait_until(enough, timeout_s, 0.05, f"{n} tasks to succeed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stuck_tasks(cluster, batch_id)}\n{cluster.logs()}") from None


def stuck_tasks(cluster: Cluster, batch_id: str) -> str:
    """The batch's tasks that have not succeeded, as the API shows them (for a failure)."""
    try:
        reply = httpx.get(f"{cluster.url}/v1/tasks", params={"batch_id": batch_id, "limit": 100})
        items = reply.json()["items"]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return f"tasks unreadable: {exc}"
    return "\n".join(str(t) for t in items if t.get("status") != "succeeded")


def _wait_degraded(cluster: Cluster) -> list[str]:
    def both_degraded() -> list[str] | None:
        reasons = degraded_reasons(cluster)
        return reasons if len(reasons) == 2 else None

    return wait_until(both_degraded, 15, 0.1, "both workers degraded")


@pytest.mark.redis
@pytest.mark.parametrize(
    "down_s",
    # 60 s: past every backoff cap (5 s probes, 10 s reconnect pauses); 70 s of the suite's
    # budget, so in make test-slow, not make test.
    [10.0, pytest.param(60.0, marks=pytest.mark.slow)],
    ids=["10s", "60s"],
)
def test_redis_killed_and_restarted_loses_nothing_and_stops_no_worker(
    tmp_path: Path, down_s: float
) -> None:
    with PrivateRedis(tmp_path / "redis") as redis:
        url = f"{redis.url}?prefix=gq"
        cluster = Cluster(tmp_path, urls=(url, url))
        try:
            ride_out(cluster, redis.kill, redis.start, down_s)
        finally:
            cluster.stop()


def postgres_with(broker: str, pg: PrivatePostgres, tmp_path: Path) -> tuple[str, str]:
    store = f"{pg.url}?schema=gq"
    return store, (store if broker == "postgres" else backend_url(broker, tmp_path))


@pytest.mark.postgres
@pytest.mark.parametrize("broker", ["postgres", "redis", "amqp"])
def test_postgres_stopped_and_started_loses_nothing_and_stops_no_worker(
    tmp_path: Path, broker: str
) -> None:
    with PrivatePostgres(tmp_path / "pg") as pg:
        cluster = Cluster(tmp_path, urls=postgres_with(broker, pg, tmp_path))
        try:
            ride_out(cluster, lambda: pg.stop("immediate"), pg.start, 10.0)
        finally:
            cluster.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("broker", ["postgres", "redis", "amqp"])
def test_postgres_connections_terminated_for_10s_lose_nothing(tmp_path: Path, broker: str) -> None:
    with PrivatePostgres(tmp_path / "pg") as pg:
        cluster = Cluster(tmp_path, urls=postgres_with(broker, pg, tmp_path))

        def flap() -> None:
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                pg.terminate_connections()
                workers_stay_up(cluster, 0.3)

        try:
            ride_out(cluster, flap, lambda: None, 0.0)
        finally:
            cluster.stop()


@pytest.mark.amqp
def test_rabbitmq_down_for_30s_loses_nothing_and_stops_no_worker(tmp_path: Path) -> None:
    """Both RabbitMQ pairings (PostgreSQL and Redis stores) through one 30 s outage."""
    require_service("RabbitMQ", "127.0.0.1", 5672, AMQP_START)
    clusters = []
    for store in ("postgres", "redis"):
        (tmp_path / store).mkdir()
        clusters.append(Cluster(tmp_path / store, backend=f"amqp-{store}"))
    try:
        ride_out(
            clusters,
            lambda: rabbitmqctl("stop_app"),
            rabbitmq_back_up,
            30.0,
            says_degraded="broker unreachable",
        )
    finally:
        for cluster in clusters:
            cluster.stop()


def test_sqlite_write_lock_held_past_the_busy_timeout_stops_nothing(tmp_path: Path) -> None:
    # The default busy timeout (15 s): a shorter one made the API and two workers, contending
    # for the file under CI load, count each other as outages after the lock was gone.
    busy_s = busy_timeout_s(f"sqlite:///{tmp_path / 'genqueue.db'}")
    cluster = Cluster(tmp_path)
    lock = SqliteLock(tmp_path / "genqueue.db")
    try:
        ride_out(cluster, lock.take, lock.release, busy_s + 2)
    finally:
        lock.close()
        cluster.stop()


@pytest.mark.parametrize("backend", ["sqlite", "amqp-postgres"])
def test_api_killed_between_storing_and_publishing_the_task_still_runs_once(
    tmp_path: Path, backend: str
) -> None:
    from genqueue.faults import AFTER_STORE_SUBMIT

    cluster = Cluster(tmp_path, {"GENQUEUE_FAULTS": AFTER_STORE_SUBMIT}, backend=backend)
    key = {"Idempotency-Key": "only-once"}
    try:
        cluster.start_api()
        with pytest.raises(httpx.HTTPError):  # stored, then the API died: no answer
            httpx.post(f"{cluster.url}/v1/tasks", json=SLEEP, headers=key, timeout=30)
        assert cluster.api is not None and cluster.api.wait(10) == -9
        del cluster.env["GENQUEUE_FAULTS"]
        cluster.start_api()
        cluster.start_worker()
        # The client retries with its idempotency key: the same task, never published by
        # anyone but the outbox relay.
        again = httpx.post(f"{cluster.url}/v1/tasks", json=SLEEP, headers=key, timeout=30)
        assert again.status_code == 200, again.text
        task_id = again.json()["id"]

        def status() -> str:
            return str(httpx.get(f"{cluster.url}/v1/tasks/{task_id}", timeout=5).json()["status"])

        wait_until(lambda: status() == "succeeded", 30, 0.1, "the stored task to run")
        assert cluster.succeeded_counts() == {task_id: 1}
    finally:
        cluster.stop()


@pytest.mark.redis
async def test_after_a_long_store_outage_a_worker_gets_time_to_renew_before_its_lease_is_judged(
    tmp_path: Path,
) -> None:
    """The sweeper's patience starts when the store answers again, not when it went away: a
    run cut off by an outage longer than the patience keeps its task once it reports in."""
    with PrivateRedis(tmp_path / "redis") as redis:
        url = f"{redis.url}?prefix=gq"
        settings = load_settings(
            data_dir=tmp_path, store=url, broker=url, lease_s=1.0, heartbeat_s=0.5
        )
        store, broker = await open_store(url, settings), await open_broker(url, settings)
        dispatcher = Dispatcher(store, broker, load_kinds())
        sweeper = Sweeper(dispatcher, ArtifactStore(str(tmp_path / "artifacts")), settings)
        try:
            task, _ = await dispatcher.submit(TaskRequest(kind="debug.echo"))
            claim = await store.claim_next("debug", "cut-off-worker", settings.lease_s)
            assert isinstance(claim, Claim)
            redis.kill()
            for _ in range(2):  # sweeps go on during the outage
                with pytest.raises(BackendUnavailableError):
                    await sweeper.recover()
            # The outage itself is the subject: it outlasts the patience and the lease.
            await let_time_pass(OUTAGE_BACKOFF.max_delay_s + settings.lease_s + 0.5)
            redis.start()

            async def recovered_nothing() -> bool:
                try:
                    assert await sweeper.recover() == 0, "requeued a lease nobody could renew"
                except BackendUnavailableError:
                    return False
                return True

            await wait_for(recovered_nothing, 30, 0.2, "the sweeper to reach the store")
            await store.renew(claim.lease, settings.lease_s)  # the worker reports in
            assert await sweeper.recover() == 0
            assert (await store.get(task.id)).status == TaskStatus.RUNNING
        finally:
            await broker.aclose()
            await store.aclose()
