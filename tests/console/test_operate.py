"""The Operate page (#/operate) against a real `genqueue up`: workers seen going offline and
back as `up` restarts a killed one, real queue and limit figures, live charts of the last hour
(and the history route behind them)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.console.conftest import PHONE, axe_violations, no_horizontal_scroll, screenshots
from tests.helpers import Cluster, stop_processes, wait_until
from tests.limited_kinds import RESOURCE

pytestmark = pytest.mark.browser

KINDS = "tests.limited_kinds"
DURATION = re.compile(r"Latest: [\d.]+ m?s")
LIVE_MS = 20_000  # a few of the page's 5 s refreshes, plus a restart's backoff


class Up(Cluster):
    """`genqueue up` (API, console and two supervised workers) in a Cluster's data directory,
    with its environment (fast leases: a killed worker is judged offline within seconds)."""

    proc: subprocess.Popen[bytes] | None = None

    def start_up(self) -> None:
        self.proc = self._spawn("up", "--port", str(self.port), "--workers", "2", "--kinds", KINDS)
        self._wait_healthy(self.proc, self.url)

    def stop(self) -> None:
        if self.proc is not None:
            stop_processes([self.proc])  # one SIGTERM: `up` stops its workers itself
        super().stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    limits = json.dumps({RESOURCE: {"start": 1, "min": 1, "max": 2}})
    up = Up(tmp_path_factory.mktemp("operate"), extra_env={"GENQUEUE_LIMITS": limits})
    try:
        up.start_up()
        yield up
    finally:
        up.stop()


def submit(cluster: Cluster, kind: str, payload: dict[str, Any]) -> str:
    response = httpx.post(
        f"{cluster.url}/v1/tasks", json={"kind": kind, "payload": payload}, timeout=10
    )
    assert response.status_code == 201, response.text
    task_id: str = response.json()["id"]
    return task_id


def row(page: Page, section: str, text: str) -> Locator:
    return page.locator(f"#{section} tbody tr").filter(has_text=text)


def fact(card: Locator, term: str) -> Locator:
    """The value of one of a limit's facts (a <dt>/<dd> pair)."""
    return card.locator("dl > div").filter(has=card.page.locator("dt", has_text=term)).locator("dd")


def worker_row(page: Page, name: str, status: str) -> Locator:
    badge = page.locator(".badge", has_text=re.compile(f"^{status}$"))
    return row(page, "workers", name).filter(has=badge)


def test_operate_shows_queues_limits_and_charts_from_real_work(
    page: Page, cluster: Up, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    for _ in range(6):
        submit(cluster, "debug.sleep", {"seconds": 0.05, "steps": 1})
    submit(cluster, "debug.fail", {})  # fails for good after its three quick attempts
    gated = [submit(cluster, "test.gated", {"gate": str(gate)}) for _ in range(2)]

    page.goto("/#/operate")
    expect(page.get_by_role("heading", name="Operate", level=2)).to_be_visible()
    expect(page.locator("#workers tbody tr")).to_have_count(2)
    expect(page.get_by_role("status").first).to_contain_text("Workers: 2 online")

    # The limit of one permit: one gated task holds it, the other waits for it.
    limit = page.get_by_role("article", name=f"limit of {RESOURCE}")
    expect(fact(limit, "In flight")).to_have_text("1", timeout=LIVE_MS)
    expect(fact(limit, "Waiting")).to_have_text("1", timeout=LIVE_MS)
    expect(fact(limit, "Permits")).to_have_text("1")
    expect(fact(limit, "Limit")).to_have_text("1 (1 to 2)")
    # Queues: debug has finished its work, gated has one running.
    debug = row(page, "queues", "debug")
    expect(debug.locator('td[data-label="Succeeded"]')).to_have_text("6", timeout=LIVE_MS)
    expect(debug.locator('td[data-label="Failed"]')).to_have_text("1", timeout=LIVE_MS)
    expect(row(page, "queues", "gated").locator('td[data-label="Running"]')).to_have_text("1")
    # Charts: drawn, and fed by the tasks that finished.
    for chart in ("throughput", "depth", "wait", "run"):
        expect(page.locator(f"#chart-{chart} canvas").first).to_be_visible()
    throughput = page.locator("#chart-throughput figcaption")
    expect(throughput).to_contain_text("6 succeeded, 1 failed")
    for chart in ("wait", "run"):
        expect(page.locator(f"#chart-{chart} figcaption")).to_contain_text(DURATION)

    assert axe_violations(page) == []
    screenshots(page, tmp_path / "screenshots", "operate")
    page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
    assert no_horizontal_scroll(page)

    gate.touch()
    expect(fact(limit, "In flight")).to_have_text("0", timeout=LIVE_MS)
    expect(throughput).to_contain_text("8 succeeded")
    for task_id in gated:
        assert httpx.get(f"{cluster.url}/v1/tasks/{task_id}").json()["status"] == "succeeded"


def test_a_killed_worker_goes_offline_and_its_replacement_comes_online(
    page: Page, cluster: Up
) -> None:
    page.goto("/#/operate")
    expect(worker_row(page, "up-1", "online")).to_have_count(1)
    workers = httpx.get(f"{cluster.url}/v1/workers", timeout=5).json()
    victim = next(w for w in workers if w["name"] == "up-1" and w["status"] == "online")

    os.kill(victim["pid"], signal.SIGKILL)
    pid = re.compile(rf"pid {victim['pid']}(?!\d)")
    gone = worker_row(page, "up-1", "offline").filter(has_text=pid)
    expect(gone).to_have_count(1, timeout=LIVE_MS)
    expect(worker_row(page, "up-1", "online")).to_have_count(1, timeout=LIVE_MS)
    expect(worker_row(page, "up-1", "online")).not_to_contain_text(pid)
    expect(page.get_by_role("status").first).to_contain_text("2 online, 1 offline")


def test_the_history_route_answers_intervals_since_the_api_started(cluster: Up) -> None:
    submit(cluster, "debug.echo", {"text": "counted"})

    def history() -> dict[str, Any] | None:
        response = httpx.get(f"{cluster.url}/v1/stats/history", params={"minutes": 5}, timeout=5)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if sum(p["succeeded"] for p in body["points"]) else None

    body = wait_until(history, 15, 0.1, "a finished task in the history")
    assert body["bucket_s"] == 10
    points = body["points"]
    assert 1 <= len(points) <= 31
    assert [p["at"] for p in points] == sorted(p["at"] for p in points)
    assert any(p["queued"] is not None for p in points)  # the sampler ran
    too_far = httpx.get(f"{cluster.url}/v1/stats/history", params={"minutes": 61}, timeout=5)
    assert too_far.status_code == 422
