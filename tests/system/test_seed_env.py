"""The seeds' own process settings on the command line: seed 000's ``APP_HOST``/``APP_PORT``
bind the API, and seed 004's worker started with an id (``worker-001``) registers under it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import Cluster, free_port, wait_until

pytestmark = pytest.mark.system


def test_app_port_binds_the_api_and_a_worker_id_names_the_worker(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    port = free_port()
    env = {**cluster.env, "APP_HOST": "127.0.0.1", "APP_PORT": str(port)}
    command = [sys.executable, "-m", "genqueue"]
    procs = [
        subprocess.Popen([*command, "api"], env=env, stderr=subprocess.DEVNULL),
        subprocess.Popen([*command, "worker", "worker-001"], env=env, stderr=subprocess.DEVNULL),
    ]
    url = f"http://127.0.0.1:{port}"

    def names() -> list[str]:
        try:
            return [w["name"] for w in httpx.get(f"{url}/v1/workers", timeout=2).json()]
        except httpx.HTTPError:
            return []

    try:
        assert wait_until(lambda: "worker-001" in names(), 30, 0.1, "worker-001 on APP_PORT")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
