"""Passwords never shown: real processes whose backend URLs carry a password run, lose their
backend, and fail to start, and neither their logs, their API answers nor the CLI's messages
contain the password (genqueue/redact.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from genqueue.client import Client
from genqueue.models import TaskStatus
from genqueue.supervise import EX_CONFIG
from tests.helpers import AMQP_START, Cluster, require_service, wait_until
from tests.servers import PrivateRedis

pytestmark = pytest.mark.system


@pytest.fixture
def password() -> str:
    return f"pw-{uuid.uuid4().hex}"


@pytest.fixture
def redis_with_password(tmp_path: Path, password: str) -> Iterator[PrivateRedis]:
    with PrivateRedis(tmp_path / "redis", password=password) as server:
        yield server


def test_logs_and_api_answers_never_show_the_redis_password(
    tmp_path: Path, password: str, redis_with_password: PrivateRedis
) -> None:
    url = f"{redis_with_password.url}?prefix=gqsecret"
    assert password in url
    cluster = Cluster(
        tmp_path / "cluster", extra_env={"GENQUEUE_LOG_LEVEL": "INFO"}, urls=(url, url)
    )
    cluster.data_dir.mkdir()
    try:
        cluster.start_api()
        cluster.start_worker(concurrency=1)
        seen: list[str] = []
        with Client(cluster.url) as client:
            task = client.submit("debug.echo", {"n": 1})
            assert client.wait(task.id, timeout_s=30).status == TaskStatus.SUCCEEDED
            # The store and broker go away: errors from the driver reach logs and answers.
            redis_with_password.kill()
            health = httpx.get(f"{cluster.url}/health", timeout=10)
            assert health.status_code == 503 and "down" in health.json()["store"]
            broker = httpx.get(f"{cluster.url}/v1/broker", timeout=10)
            submit = httpx.post(
                f"{cluster.url}/v1/tasks", json={"kind": "debug.echo", "payload": {}}, timeout=10
            )
            assert submit.status_code == 503
            seen += [health.text, broker.text, submit.text]
            wait_until(lambda: "unreachable" in cluster.logs(), 30, 0.2, "the worker to log it")
            redis_with_password.start()
            back = httpx.get(f"{cluster.url}/v1/workers", timeout=10)
            seen.append(back.text)
        logs = cluster.logs()
        assert "unreachable" in logs  # the outage was logged, with its reason
        for text in [*seen, logs]:
            assert password not in text
    finally:
        cluster.stop()


def genqueue_exits_with_config_error(command: list[str], env: dict[str, str]) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "genqueue", *command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == EX_CONFIG, run.stdout + run.stderr
    return run.stdout + run.stderr


def test_a_bad_backend_url_is_reported_without_its_password(tmp_path: Path, password: str) -> None:
    env = {"GENQUEUE_DATA_DIR": str(tmp_path), "GENQUEUE_STORE": f"mysql://app:{password}@db/x"}
    output = genqueue_exits_with_config_error(["worker"], env)
    assert "unknown store scheme 'mysql' in 'mysql://app:***@db/x'" in output
    assert password not in output


def test_a_refused_rabbitmq_login_is_reported_without_the_password(
    tmp_path: Path, password: str
) -> None:
    require_service("RabbitMQ", "127.0.0.1", 5672, AMQP_START)
    env = {
        "GENQUEUE_DATA_DIR": str(tmp_path),
        "GENQUEUE_BROKER": f"amqp://guest:{password}@127.0.0.1:5672/?prefix=gqsecret",
    }
    output = genqueue_exits_with_config_error(["worker"], env)
    assert "RabbitMQ refused the login" in output
    assert password not in output
