"""The private servers outage tests rely on: each comes back from a crash with its data."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import redis

from tests.helpers import wait_until
from tests.servers import PrivatePostgres, PrivateRedis

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]


def refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_private_redis_keeps_acknowledged_writes_across_sigkill(tmp_path: Path) -> None:
    with PrivateRedis(tmp_path) as server:
        with redis.Redis.from_url(server.url) as client:
            client.set("kept", "yes")
        server.kill()
        assert refuses(server.port)
        server.start()
        with redis.Redis.from_url(server.url) as client:
            assert client.get("kept") == b"yes"
    assert not server.running


def test_private_postgres_recovers_tables_after_an_immediate_stop(tmp_path: Path) -> None:
    with PrivatePostgres(tmp_path) as server:
        server.psql("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7);")
        server.stop("immediate")
        assert refuses(server.port)
        server.start()
        assert server.psql("SELECT n FROM kept;") == ["7"]
    assert not server.base.exists()


def test_private_postgres_terminates_only_genqueue_sessions(tmp_path: Path) -> None:
    with PrivatePostgres(tmp_path) as server:
        sessions = [
            subprocess.Popen(
                ["psql", f"{server.url}?application_name={name}", "-qc", "SELECT pg_sleep(60)"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name in ("genqueue:soak", "bystander")
        ]
        try:

            def connected() -> bool:
                return server.psql(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name"
                    " IN ('genqueue:soak', 'bystander');"
                ) == ["2"]

            wait_until(connected, 10, 0.05, "both sessions to connect")
            assert server.terminate_connections() == 1
            assert sessions[0].wait(10) != 0
            assert sessions[1].poll() is None
        finally:
            for session in sessions:
                session.kill()
                session.wait(10)
