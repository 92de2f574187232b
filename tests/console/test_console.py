"""The console placeholder at ``/`` in a real Chromium, against a real API (and worker)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Response,
    expect,
    sync_playwright,
)

from tests.helpers import Cluster

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SLOW_MS = 30_000  # image.generate renders in a pool process: allow for a cold start
TASK_ID = re.compile(r"^[0-9a-f]{32}$")

# Record every value the page gives a <progress>, so a test can see where the bar went.
RECORD_PROGRESS = """
(() => {
  window.__progress = [];
  const proto = HTMLProgressElement.prototype;
  const desc = Object.getOwnPropertyDescriptor(proto, "value");
  Object.defineProperty(proto, "value", {
    configurable: true,
    get() { return desc.get.call(this); },
    set(v) { window.__progress.push(Number(v)); desc.set.call(this, v); },
  });
})();
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"Chromium not found at {CHROMIUM}; install it with: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, cluster: Cluster) -> Iterator[Page]:
    """A fresh page; fails the test on any uncaught script error, console error or server
    error. Closed before the cluster stops (it depends on it), so open streams end cleanly."""
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(RECORD_PROGRESS)
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # Failed loads show up as responses below (a refused 422 is part of some tests).
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"console: {message.text}")

    def on_response(response: Response) -> None:
        if response.status >= 500 or response.status in (404, 405):
            problems.append(f"{response.request.method} {response.url}: {response.status}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("response", on_response)
    yield page
    context.close()
    assert problems == [], problems


def tasks(cluster: Cluster) -> list[dict[str, object]]:
    response = httpx.get(f"{cluster.url}/v1/tasks", timeout=10)
    assert response.status_code == 200
    items: list[dict[str, object]] = response.json()["items"]
    return items


def fill_form(
    page: Page, prompt: str, width: str = "128", height: str = "128", steps: str = "5"
) -> None:
    page.locator("#prompt").fill(prompt)
    page.locator("#width").fill(width)
    page.locator("#height").fill(height)
    page.locator("#steps").fill(steps)


def test_generate_shows_the_task_live_and_the_finished_png(page: Page, cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    page.goto(cluster.url)
    expect(page.locator("#job")).to_be_hidden()
    fill_form(page, "a lighthouse on a cliff at sunset")
    page.locator("#submit").click()

    task_id_el = page.locator("#task-id")
    expect(task_id_el).to_have_text(TASK_ID)
    task_id = task_id_el.inner_text()
    [stored] = tasks(cluster)
    assert stored["id"] == task_id
    assert stored["kind"] == "image.generate" and stored["user"] == "console"
    assert stored["payload"] == {
        "prompt": "a lighthouse on a cliff at sunset",
        "width": 128,
        "height": 128,
        "style": "default",
        "seed": None,
        "steps": 5,
        "engine": "procedural",
    }

    finished = re.compile(r"^(succeeded|failed|cancelled)$")
    expect(page.locator("#status")).to_have_text(finished, timeout=SLOW_MS)
    done = httpx.get(f"{cluster.url}/v1/tasks/{task_id}", timeout=10).json()
    assert done["status"] == "succeeded", (done["error"], cluster.logs())
    expect(page.locator("#status")).to_have_text("succeeded")
    image = page.locator("#image")
    expect(image).to_be_visible(timeout=SLOW_MS)
    page.wait_for_function(
        "() => { const i = document.getElementById('image');"
        " return i.complete && i.naturalWidth > 0; }",
        timeout=SLOW_MS,
    )
    assert image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [128, 128]

    image_url = done["result"]["image_url"]
    assert image.get_attribute("src") == image_url
    png = httpx.get(f"{cluster.url}{image_url}", timeout=10)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png.content) == done["result"]["file_size"]

    expect(page.locator("#caption")).to_contain_text("128\u00d7128")
    expect(page.locator("#progress")).to_have_js_property("value", 1)
    seen = page.evaluate("() => window.__progress")
    assert seen[-1] == 1 and all(0 <= v <= 1 for v in seen), seen
    expect(page.locator("#cancel")).to_be_disabled()
    expect(page.locator("#position-wrap")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#history li")).to_have_count(1)
    expect(page.locator("#history li")).to_contain_text("succeeded")


def test_queued_task_shows_its_position_and_can_be_cancelled(page: Page, cluster: Cluster) -> None:
    ahead = httpx.post(
        f"{cluster.url}/v1/tasks",
        json={"kind": "image.generate", "payload": {"prompt": "first in line"}},
        timeout=10,
    )
    assert ahead.status_code == 201
    page.goto(cluster.url)
    fill_form(page, "a fox in the snow")
    page.locator("#submit").click()

    expect(page.locator("#task-id")).to_have_text(TASK_ID)
    task_id = page.locator("#task-id").inner_text()
    expect(page.locator("#status")).to_have_text("queued")
    expect(page.locator("#position-wrap")).to_be_visible()
    expect(page.locator("#position")).to_have_text("2")
    expect(page.locator("#cancel")).to_be_enabled()

    page.locator("#cancel").click()
    expect(page.locator("#status")).to_have_text("cancelled")
    expect(page.locator("#position-wrap")).to_be_hidden()
    expect(page.locator("#cancel")).to_be_disabled()
    expect(page.locator("#result")).to_be_hidden()
    statuses = {t["id"]: t["status"] for t in tasks(cluster)}
    assert statuses == {task_id: "cancelled", ahead.json()["id"]: "queued"}


@pytest.mark.parametrize(
    ("prompt", "width", "steps", "field"),
    [
        ("a red fox", "100000", "5", "payload.width"),
        ("   ", "128", "5", "payload.prompt"),
        ("a red fox", "128", "0", "payload.steps"),
    ],
    ids=["width-100000", "blank-prompt", "zero-steps"],
)
def test_invalid_input_shows_the_field_at_fault_and_creates_no_task(
    page: Page, cluster: Cluster, prompt: str, width: str, steps: str, field: str
) -> None:
    page.goto(cluster.url)
    fill_form(page, prompt, width=width, steps=steps)
    page.locator("#submit").click()

    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(f"{field}:")
    assert error.inner_text().count(":") == 1, "only the bad field is named"
    expect(page.locator("#submit")).to_be_enabled()
    expect(page.locator("#job")).to_be_hidden()
    assert tasks(cluster) == []


def test_fixing_the_input_clears_the_error_and_submits(page: Page, cluster: Cluster) -> None:
    page.goto(cluster.url)
    fill_form(page, "a red fox", width="100000")
    page.locator("#submit").click()
    expect(page.locator("#error")).to_contain_text("width")
    assert tasks(cluster) == []

    page.locator("#width").fill("256")
    page.locator("#submit").click()
    expect(page.locator("#task-id")).to_have_text(TASK_ID)
    expect(page.locator("#error")).to_be_hidden()
    [stored] = tasks(cluster)
    assert stored["id"] == page.locator("#task-id").inner_text()
    assert stored["payload"] == {
        "prompt": "a red fox",
        "width": 256,
        "height": 128,
        "style": "default",
        "seed": None,
        "steps": 5,
        "engine": "procedural",
    }


def test_video_tab_renders_and_plays_an_mp4(page: Page, cluster: Cluster) -> None:
    cluster.start_worker(queues="video")
    page.goto(cluster.url)
    page.get_by_role("tab", name="Video").click()
    expect(page.locator("#generate")).to_be_hidden()
    page.locator("#video-prompt").fill("snow falling on a quiet village at night")
    page.locator("#video-duration").fill("1")
    page.locator("#video-resolution").select_option("240p")
    page.locator("#video-submit").click()

    expect(page.locator("#task-kind")).to_have_text("video.generate")
    expect(page.locator("#status")).to_have_text("succeeded", timeout=SLOW_MS)
    [stored] = tasks(cluster)
    result = stored["result"]
    assert isinstance(result, dict)
    video = page.locator("#video")
    expect(video).to_be_visible()
    expect(page.locator("#image")).to_be_hidden()
    assert video.get_attribute("src") == result["video_url"]
    # The browser itself decodes it: metadata loaded, a picture of the right size.
    page.wait_for_function(
        "() => { const v = document.getElementById('video');"
        " return v.readyState >= 1 && v.videoWidth > 0; }",
        timeout=SLOW_MS,
    )
    width, height, duration = video.evaluate("v => [v.videoWidth, v.videoHeight, v.duration]")
    assert (width, height) == (result["width"], result["height"])
    assert abs(duration - 1.0) < 0.2
    expect(page.locator("#caption")).to_contain_text("local")


def test_diagnose_tab_uploads_a_frame_and_shows_live_alerts_and_findings(
    page: Page, cluster: Cluster, tmp_path: Path
) -> None:
    from tests import diagnose_scenes as scenes

    frame = tmp_path / "cam.png"
    frame.write_bytes(scenes.encode(scenes.dark(scenes.blurred(scenes.scene()))))
    cluster.start_worker(queues="diagnosis")
    page.goto(cluster.url)
    page.get_by_role("tab", name="Diagnose").click()
    page.locator("#diag-submit").click()
    expect(page.locator("#error")).to_contain_text("image: choose a camera image first")
    assert tasks(cluster) == []

    page.locator("#diag-file").set_input_files(str(frame))
    page.locator("#diag-camera").fill("gate-9")
    page.locator("#diag-submit").click()
    expect(page.locator("#status")).to_have_text("succeeded", timeout=SLOW_MS)
    expect(page.locator("#error")).to_be_hidden()
    alerts = page.locator("#alerts li")
    expect(alerts.filter(has_text="dark")).to_have_count(1)
    expect(alerts.filter(has_text="blur")).to_have_count(1)
    expect(page.locator("#findings tr.alert")).to_have_count(alerts.count())
    [stored] = tasks(cluster)
    result = stored["result"]
    assert isinstance(result, dict) and stored["kind"] == "image.diagnose"
    assert stored["payload"]["camera_id"] == "gate-9"  # type: ignore[index]
    assert page.locator("#image").get_attribute("src") == result["annotated_url"]
    expect(page.locator("#caption")).to_contain_text("verdict: alert")
