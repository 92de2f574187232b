"""PostgreSQL faults: connections dropped under load, a LISTEN feed cut, migrations raced."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from genqueue import Client, TaskStatus
from genqueue.backends.postgres.broker import PostgresBroker
from genqueue.backends.postgres.db import connect_one, parse_url
from genqueue.backends.postgres.migrate import Migration, bundled, migrate
from genqueue.backends.postgres.store import PostgresStore
from genqueue.errors import BackendUnavailableError
from genqueue.models import EventType, Progress
from tests.contract.test_store import lease_of, new_task
from tests.helpers import Cluster, backend_url, forget, wait_until

pytestmark = [pytest.mark.system, pytest.mark.postgres]

SLEEP = {"kind": "debug.sleep", "payload": {"seconds": 0.05, "steps": 1}}


def schema_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["schema"][0]


def psql(url: str, sql: str) -> list[str]:
    out = subprocess.run(
        ["psql", url.split("?")[0], "-qAtc", sql], check=True, capture_output=True, text=True
    )
    return [line for line in out.stdout.splitlines() if line]


def drop_connections(url: str) -> int:
    """Terminate every server connection genqueue opened on this test's schema."""
    name = f"genqueue:{schema_of(url)}"
    return len(
        psql(
            url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = 'test' AND application_name = '{name}'"
            " AND pid <> pg_backend_pid()",
        )
    )


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    place = backend_url("postgres", tmp_path)
    yield place
    forget(place)


@pytest.fixture
async def store(url: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.connect(url)
    yield store
    await store.aclose()


def test_dropped_connections_mid_batch_answer_503_at_worst_and_lose_nothing(
    tmp_path: Path,
) -> None:
    cluster = Cluster(tmp_path, backend="postgres")
    cluster.start_api()
    try:
        statuses: list[int] = []
        accepted: list[str] = []

        def submit(n: int) -> None:
            reply = httpx.post(f"{cluster.url}/v1/batches", json={"tasks": [SLEEP] * n}, timeout=30)
            statuses.append(reply.status_code)
            if reply.status_code == 201:
                accepted.append(reply.json()["id"])

        with Client(cluster.url) as client:
            submit(150)
            for i in range(2):
                cluster.start_worker(name=f"w{i}", concurrency=4)

            def succeeded() -> int:
                return sum(
                    client.get_batch(b).counts.get(TaskStatus.SUCCEEDED, 0) for b in accepted
                )

            for _ in range(3):
                before = wait_until(succeeded, 60, 0.05, "tasks to succeed")
                assert drop_connections(cluster.store_url) > 0
                submit(20)  # straight into the outage
                statuses.append(httpx.get(f"{cluster.url}/v1/queues", timeout=30).status_code)
                wait_until(lambda: succeeded() > before, 60, 0.05, "work to resume")  # noqa: B023

            assert set(statuses) <= {200, 201, 503}, statuses
            submit(5)
            assert statuses[-1] == 201, "the API did not recover by itself"

            def all_done() -> bool:
                return all(client.get_batch(b).finished for b in accepted)

            wait_until(all_done, 120, 0.2, "every accepted batch to finish")
            ids = [t.id for b in accepted for t in client.list_tasks(batch_id=b, limit=500).items]
            assert all(client.get(i).status == TaskStatus.SUCCEEDED for i in ids)
        recorded = cluster.succeeded_counts()
        assert {i: recorded.get(i) for i in ids} == dict.fromkeys(ids, 1)
    finally:
        cluster.stop()


async def test_watch_resumes_after_its_connection_drops_and_misses_nothing(
    store: PostgresStore, url: str
) -> None:
    feed = await store.watch()
    first = new_task()
    await store.submit([first])
    assert (await asyncio.wait_for(anext(feed), 5)).task_id == first.id
    assert await asyncio.to_thread(drop_connections, url) > 0
    # Committed while the feed's connection is gone: it must still arrive, in order.
    second = new_task()
    await store.submit([second])
    lease = await lease_of(store, second.id, "w", 5.0)
    await store.set_progress(lease, Progress(fraction=0.5))
    seen = [await asyncio.wait_for(anext(feed), 10) for _ in range(3)]
    await feed.aclose()
    assert [(e.task_id, e.type) for e in seen] == [
        (second.id, EventType.QUEUED),
        (second.id, EventType.STARTED),
        (second.id, EventType.PROGRESS),
    ]


async def test_store_calls_recover_after_connections_are_dropped(
    store: PostgresStore, url: str
) -> None:
    await store.submit([new_task()])
    for _ in range(3):
        assert await asyncio.to_thread(drop_connections, url) > 0
        [(task, created)] = await store.submit([new_task()])
        assert created and (await store.get(task.id)).status == TaskStatus.QUEUED


async def test_migrations_apply_once_and_in_version_order(url: str) -> None:
    first = await PostgresStore.connect(url)
    await first.aclose()
    again = await PostgresStore.connect(url)  # nothing left to do
    await again.aclose()
    rows = psql(url, f'SELECT version, name FROM "{schema_of(url)}".schema_migrations')
    assert rows == [f"{m.version}|{m.name}" for m in bundled()]

    target = parse_url(url)
    conn = await connect_one(target)
    try:
        extra = Migration(999, "probe", "CREATE TABLE probe (x integer)")
        assert await migrate(conn, target.schema, [*bundled(), extra]) == [999]
        assert await migrate(conn, target.schema, [*bundled(), extra]) == []
        assert await conn.fetchval("SELECT count(*) FROM probe") == 0
    finally:
        await conn.close()


def test_processes_starting_together_migrate_once(url: str) -> None:
    script = (
        "import asyncio, sys\n"
        "from genqueue.backends.postgres.store import PostgresStore\n"
        "from genqueue.backends.postgres.broker import PostgresBroker\n"
        "async def main():\n"
        "    for backend in (PostgresStore.connect(sys.argv[1]),"
        " PostgresBroker.connect(sys.argv[1])):\n"
        "        await (await backend).aclose()\n"
        "asyncio.run(main())\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    rows = psql(url, f'SELECT version FROM "{schema_of(url)}".schema_migrations')
    assert rows == [str(m.version) for m in bundled()]


async def test_an_unreachable_server_is_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailableError):
        await PostgresBroker.connect("postgresql://postgres@127.0.0.1:1/test?schema=nowhere")


async def test_events_wait_for_a_slow_transaction_with_a_lower_id(
    store: PostgresStore, url: str
) -> None:
    feed = await store.watch()
    slow_task, fast_task = new_task(), new_task()
    conn = await connect_one(parse_url(url))
    try:
        # A transaction takes an event id, then commits after a later one has committed.
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "INSERT INTO tasks (id, kind, queue, payload, status) VALUES ($1, 'k', 'q', '{}',"
            " 'queued')",
            slow_task.id,
        )
        await conn.execute(
            "INSERT INTO events (type, task_id, status) VALUES ('task.queued', $1, 'queued')",
            slow_task.id,
        )
        await store.submit([fast_task])
        assert (await asyncio.wait_for(anext(feed), 5)).task_id == fast_task.id
        await tx.commit()
        late = await asyncio.wait_for(anext(feed), 5)
        assert late.task_id == slow_task.id
    finally:
        await feed.aclose()
        await conn.close()
