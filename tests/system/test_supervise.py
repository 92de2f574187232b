"""`genqueue up` supervises its workers: a killed one comes back, a misconfigured one does not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from genqueue import Client, TaskStatus
from tests.helpers import FAST_LEASES, free_port, wait_until
from tests.kinds_broken_on_workers import BROKEN

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]


class Up:
    """One `genqueue up` process on a data directory of its own, its output in a file."""

    def __init__(self, data_dir: Path, *args: str, **env: str) -> None:
        self.log_path = data_dir / "up.log"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "GENQUEUE_DATA_DIR": str(data_dir),
            "GENQUEUE_LOG_LEVEL": "WARNING",
            **FAST_LEASES,
            **env,
        }
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "genqueue", "up", "--port", str(port), *args],
                env=env,
                cwd=REPO,  # so that `--kinds tests.<module>` imports
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def online(self) -> list[dict[str, object]] | None:
        """The online workers, or None while the API does not answer."""
        assert self.proc.poll() is None, self.log()
        try:
            workers = httpx.get(f"{self.url}/v1/workers", timeout=2).json()
        except httpx.HTTPError:
            return None
        return [w for w in workers if w["status"] == "online"]

    def wait_exit(self, timeout_s: float) -> str:
        """Wait for `up` to exit on its own; its log."""
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout_s} s:\n{self.log()}") from None
        return self.log()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # its workers follow (PDEATHSIG)
        self.proc.wait(10)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Up]]:
    """Start `genqueue up` with these arguments; stopped at teardown whatever happens."""
    started: list[Up] = []

    def launch(*args: str, **env: str) -> Up:
        started.append(Up(tmp_path, *args, **env))
        return started[-1]

    yield launch
    for up in started:
        up.close()


def test_a_killed_worker_is_restarted_and_work_goes_on(
    launch: Callable[..., Up],
) -> None:
    up = launch("--workers", "2")

    def two_online() -> list[dict[str, object]] | None:
        online = up.online()
        return online if online is not None and len(online) == 2 else None

    before = wait_until(two_online, 30, 0.1, "2 workers online")
    victim = before[0]
    old_pids = {w["pid"] for w in before}
    os.kill(int(str(victim["pid"])), signal.SIGKILL)

    def replacement() -> bool:
        online = up.online() or []
        return any(w["pid"] not in old_pids and w["name"] == victim["name"] for w in online)

    wait_until(replacement, 15, 0.1, f"a new {victim['name']} online")
    # The killed one stays "online" in the registry until its heartbeat is missed.
    after = wait_until(two_online, 15, 0.1, "2 workers online again")
    assert sorted(str(w["name"]) for w in after) == ["up-1", "up-2"]
    assert f"worker {victim['name']} (pid {victim['pid']}) killed by SIGKILL; restarting in" in (
        up.log()
    )
    assert f"worker {victim['name']} restarted (pid " in up.log()

    with Client(up.url) as client:
        ids = [
            httpx.post(
                f"{up.url}/v1/tasks",
                json={"kind": "debug.sleep", "payload": {"seconds": 0.05, "steps": 1}},
                timeout=10,
            ).json()["id"]
            for _ in range(8)
        ]
        done = [client.wait(task_id, timeout_s=20) for task_id in ids]
    assert [t.status for t in done] == [TaskStatus.SUCCEEDED] * 8

    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(30) == 0, up.log()


def test_workers_with_a_configuration_error_are_not_restarted_and_up_gives_up(
    launch: Callable[..., Up],
) -> None:
    up = launch("--workers", "2", "--kinds", "tests.kinds_broken_on_workers")
    log = up.wait_exit(45)
    assert up.proc.returncode == 1, log
    assert "genqueue up stops, its workers keep failing" in log
    for name in ("up-1", "up-2"):
        assert f"worker {name} exited with code 78 (a configuration error" in log
    # Each worker printed its reason once and was not started again.
    assert log.count(f"configuration error: {BROKEN}") == 2, log
    assert "restarting in" not in log and "restarted (pid" not in log, log


def test_workers_in_a_crash_loop_make_up_give_up(launch: Callable[..., Up]) -> None:
    # Six exits per slot, with backoff 0.5, 1, 2, 4 and 8 s (halved at most by jitter).
    up = launch(
        "--workers", "2", "--kinds", "tests.kinds_broken_on_workers", BROKEN_WORKERS="crash"
    )
    log = up.wait_exit(50)
    assert up.proc.returncode == 1, log
    assert "genqueue up stops, its workers keep failing" in log
    for name in ("up-1", "up-2"):
        assert f"worker {name} exited 6 times within 60 s, last exited with code 1" in log
        assert f"worker {name} restarted (pid " in log
