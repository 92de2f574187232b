"""The task page's live facts in a real Chromium, against a real API and workers: a queued
task's place in line moves without a reload, and a page opened mid-run shows the task's
history and its latest preview at once, then follows the run to its end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import PHONE, axe_violations, no_horizontal_scroll, screenshots
from tests.helpers import Cluster, json_of, line_and_previews, wait_until

pytestmark = pytest.mark.browser

# The caption of the first picture the page shows, however briefly.
RECORD_FIRST_PREVIEW = """
window.__firstPreview = null;
new MutationObserver(() => {
  const img = document.querySelector("#live-preview img");
  if (window.__firstPreview === null && img && img.src.startsWith("data:image/")) {
    window.__firstPreview = document.querySelector("#live-preview figcaption").textContent;
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["src"] });
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with line_and_previews(tmp_path_factory.mktemp("console-task-page")) as cluster:
        yield cluster


def submit(cluster: Cluster, kind: str, payload: dict[str, Any]) -> str:
    body = {"kind": kind, "payload": payload, "user": "console"}
    task_id: str = json_of(httpx.post(f"{cluster.url}/v1/tasks", json=body, timeout=10), 201)["id"]
    return task_id


def read(cluster: Cluster, task_id: str) -> dict[str, Any]:
    return json_of(httpx.get(f"{cluster.url}/v1/tasks/{task_id}", timeout=10))


def cancel(cluster: Cluster, task_id: str) -> None:
    json_of(httpx.post(f"{cluster.url}/v1/tasks/{task_id}/cancel", timeout=10))


def check_page(page: Page, folder: Path, name: str) -> None:
    """No serious accessibility violation; screenshots; no sideways scroll on a phone."""
    assert axe_violations(page) == []
    page.set_viewport_size(PHONE)
    assert no_horizontal_scroll(page), f"{name} scrolls sideways at phone width"
    screenshots(page, folder, name)  # ends at desktop size


def test_the_place_in_line_moves_without_a_reload(
    page: Page, cluster: Cluster, tmp_path: Path
) -> None:
    busy = submit(cluster, "debug.sleep", {"seconds": 60, "steps": 60})
    wait_until(lambda: read(cluster, busy)["status"] == "running", 30, 0.05, "the busy run")
    ahead = submit(cluster, "debug.sleep", {"seconds": 60, "steps": 60})
    task = submit(cluster, "debug.echo", {"n": 1})

    page.goto(f"/#/tasks/{task}")
    when = page.locator("#task-when")
    expect(when).to_contain_text("#2 in line")
    expect(page.locator("#timeline")).to_contain_text("queued")
    check_page(page, tmp_path, "task-queued")

    cancel(cluster, busy)  # the task ahead starts: this one is next
    expect(when).to_contain_text("#1 in line")
    cancel(cluster, ahead)
    expect(page.locator("#task-status")).to_have_text("succeeded")
    timeline = page.locator("#timeline li")
    expect(timeline.filter(has_text="started")).to_have_count(1)
    expect(timeline.last).to_contain_text("succeeded")


def test_a_page_opened_mid_run_shows_its_history_and_latest_preview(
    page: Page, cluster: Cluster, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"  # the run ends once it exists
    task = submit(cluster, "test.preview-async", {"frames": 4, "frame_s": 0.01, "gate": str(gate)})

    def all_frames_shown() -> bool:
        now = read(cluster, task)
        return bool(now["preview"]) and now["progress"]["fraction"] == 1.0

    wait_until(all_frames_shown, 30, 0.05, "all four frames")

    page.add_init_script(RECORD_FIRST_PREVIEW)
    page.goto(f"/#/tasks/{task}")
    expect(page.locator("#live-preview")).to_be_visible()
    # Drawn from the task's read, before any live frame could come.
    assert page.evaluate("window.__firstPreview") == "Live preview · the latest"
    timeline = page.locator("#timeline li")
    expect(timeline.first).to_contain_text("queued")
    expect(timeline.filter(has_text="started on")).to_have_count(1)  # from the history
    check_page(page, tmp_path, "task-running")

    gate.touch()
    expect(page.locator("#task-status")).to_have_text("succeeded", timeout=20_000)
    expect(page.locator("#live-preview")).to_be_hidden()
    expect(timeline.filter(has_text="queued")).to_have_count(1)
    expect(timeline.filter(has_text="started")).to_have_count(1)
