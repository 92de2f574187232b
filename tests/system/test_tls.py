"""TLS to every backend: a real API and worker run a task against private servers that speak
only TLS, with certificates the test makes (tests/certs.py); the URL carries the CA file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from genqueue.backends import open_store
from genqueue.client import Client
from genqueue.errors import BackendUnavailableError
from genqueue.models import TaskStatus
from genqueue.settings import load_settings
from tests.certs import Certificates, make_certificates
from tests.helpers import Cluster, backend_url
from tests.servers import PrivatePostgres, PrivateRabbitMQ, PrivateRedis

pytestmark = pytest.mark.system


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return make_certificates(_dir(tmp_path / "certs"))


def _dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


@pytest.fixture
def running(tmp_path: Path) -> Iterator[list[Cluster]]:
    """Clusters a test starts, stopped (while its servers still run) at teardown."""
    clusters: list[Cluster] = []
    yield clusters
    for cluster in clusters:
        cluster.stop()


def run_a_task(tmp_path: Path, store: str, broker: str, running: list[Cluster]) -> Cluster:
    """API + worker on (store, broker); one task submitted and run to success."""
    cluster = Cluster(_dir(tmp_path / "cluster"), urls=(store, broker))
    running.append(cluster)
    cluster.start_api()
    cluster.start_worker(concurrency=1)
    with Client(cluster.url) as client:
        task = client.submit("debug.echo", {"over": "tls"})
        done = client.wait(task.id, timeout_s=30)
        assert done.status == TaskStatus.SUCCEEDED, cluster.logs()
        assert done.result == {"over": "tls"}
        assert client.broker().connected
    return cluster


def test_a_task_runs_over_tls_to_redis(
    tmp_path: Path, certs: Certificates, running: list[Cluster]
) -> None:
    with PrivateRedis(tmp_path / "redis", tls=certs) as server:
        assert server.url.startswith("rediss://")
        url = f"{server.url}&prefix=gqtls"
        run_a_task(tmp_path, url, url, running)
        # The server speaks nothing but TLS: a plain client is not served at all.
        with (
            pytest.raises(redis.ConnectionError),
            redis.Redis(port=server.port, socket_timeout=2) as plain,
        ):
            plain.ping()
        running.pop().stop()


def test_a_task_runs_over_tls_to_postgres(
    tmp_path: Path, certs: Certificates, running: list[Cluster]
) -> None:
    with PrivatePostgres(tmp_path / "pg", tls=certs) as server:
        assert "sslmode=verify-full" in server.url
        url = f"{server.url}&schema=gqtls"
        run_a_task(tmp_path, url, url, running)
        # pg_hba takes TCP clients over TLS only; and every genqueue session says it is.
        sessions = server.psql(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
            " WHERE starts_with(a.application_name, 'genqueue:')"
        )
        assert sessions and set(sessions) == {"t"}
        running.pop().stop()


def test_a_task_runs_over_tls_to_rabbitmq(
    tmp_path: Path, certs: Certificates, running: list[Cluster]
) -> None:
    with PrivateRabbitMQ(tmp_path / "rabbitmq", tls=certs) as server:
        assert server.url.startswith("amqps://")
        store = backend_url("sqlite", _dir(tmp_path / "store"))
        run_a_task(tmp_path, store, f"{server.url}&prefix=gqtls", running)
        running.pop().stop()


async def test_a_server_certificate_from_another_ca_is_refused(
    tmp_path: Path, certs: Certificates
) -> None:
    stranger = make_certificates(_dir(tmp_path / "other-ca"))
    settings = load_settings(data_dir=tmp_path)
    with PrivateRedis(tmp_path / "redis", tls=certs) as server:
        url = server.url.replace(str(certs.ca), str(stranger.ca))
        with pytest.raises(BackendUnavailableError, match="certificate verify failed"):
            store = await open_store(url, settings)
            await store.aclose()
    with PrivatePostgres(tmp_path / "pg", tls=certs) as pg:
        url = pg.url.replace(str(pg.tls.ca if pg.tls else ""), str(stranger.ca))
        with pytest.raises(BackendUnavailableError, match="certificate verify failed"):
            store = await open_store(url, settings)
            await store.aclose()
