"""Create, My tasks and the task page in a real Chromium, against a real API and workers: a
form generated from each kind's schema with problems shown beside their fields, a task list
and a task page kept live by event streams, and each page accessible at phone width."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import (
    PHONE,
    SLOW_MS,
    Problems,
    axe_violations,
    no_horizontal_scroll,
    screenshots,
)
from tests.helpers import Cluster, json_of, unique_name

pytestmark = pytest.mark.browser

TASK_PAGE = re.compile(r"#/tasks/[0-9a-f]{32}$")

# Record every live preview the page shows, however briefly: a short run shows few.
RECORD_PREVIEWS = """
window.__previews = [];
new MutationObserver((changes) => {
  for (const change of changes) {
    const img = change.target;
    if (img.matches("img.preview") && img.src.startsWith("data:image/")) {
      window.__previews.push(img.src);
    }
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["src"] });
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One API for the file, a worker for diagnosis and debug tasks; none for video (its tasks
    stay queued) and none for images until a test starts one."""
    cluster = Cluster(tmp_path_factory.mktemp("console-tasks"))
    try:
        cluster.start_api()
        cluster.start_worker(queues="diagnosis,debug", concurrency=2)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def user(page: Page) -> str:
    """The console's user for this test, so each test sees only its own tasks."""
    name = unique_name("u")
    page.add_init_script(f"localStorage.setItem('genqueue.user', {json.dumps(name)})")
    return name


def tasks_of(cluster: Cluster, user: str) -> list[dict[str, Any]]:
    page = json_of(httpx.get(f"{cluster.url}/v1/tasks", params={"user": user}, timeout=10))
    items: list[dict[str, Any]] = page["items"]
    return items


def submit(cluster: Cluster, kind: str, payload: dict[str, Any], user: str) -> dict[str, Any]:
    body = {"kind": kind, "payload": payload, "user": user}
    return json_of(httpx.post(f"{cluster.url}/v1/tasks", json=body, timeout=10), 201)


def check_page(page: Page, folder: Path, name: str) -> None:
    """No serious accessibility violation; screenshots; no sideways scroll on a phone."""
    assert axe_violations(page) == []
    page.set_viewport_size(PHONE)
    assert no_horizontal_scroll(page), f"{name} scrolls sideways at phone width"
    screenshots(page, folder, name)  # ends at desktop size


def test_a_prompt_shows_live_previews_then_the_picture(
    page: Page, cluster: Cluster, user: str, tmp_path: Path
) -> None:
    page.add_init_script(RECORD_PREVIEWS)
    page.goto("/#/create")
    page.locator("#kind").select_option("image.generate")
    expect(page.locator("#f-prompt")).to_be_visible()
    check_page(page, tmp_path, "create")

    page.locator("#f-prompt").fill("a lighthouse on a cliff at sunset")
    page.locator("#f-width").fill("96")
    page.locator("#f-height").fill("96")
    page.locator("#f-steps").fill("40")
    page.locator("#submit").click()
    expect(page).to_have_url(TASK_PAGE)
    [stored] = tasks_of(cluster, user)
    assert stored["kind"] == "image.generate"
    assert stored["payload"]["width"] == 96 and stored["payload"]["steps"] == 40
    expect(page.locator("#task-status")).to_have_text("queued")
    expect(page.locator("#task-when")).to_contain_text("#1 in line")

    # The page is following the queued task: a worker starting now shows the whole run.
    cluster.start_worker(queues="image", concurrency=1)
    picture = page.locator("#result-image")
    expect(picture).to_be_visible(timeout=SLOW_MS)
    expect(page.locator("#task-status")).to_have_text("succeeded")
    page.wait_for_function(
        "() => { const i = document.querySelector('#result-image');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    assert picture.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [96, 96]
    assert page.evaluate("window.__previews.length") >= 1
    expect(page.locator("#live-preview")).to_be_hidden()
    timeline = page.locator("#timeline")
    for step in ("queued", "started", "progress", "succeeded"):
        expect(timeline).to_contain_text(step)
    expect(page.locator("#result")).to_contain_text("96\u00d796")
    check_page(page, tmp_path, "task")


def test_a_bad_width_is_shown_beside_its_field_and_nothing_is_sent(
    page: Page, cluster: Cluster, user: str
) -> None:
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    page.goto("/#/create")
    kinds = page.locator("#kind option")
    expect(kinds).not_to_have_count(0)
    for kind in kinds.all_text_contents():  # every kind gets a form (the page fails on errors)
        page.locator("#kind").select_option(kind)
        expect(page.locator("fieldset .field").first).to_be_visible()
    page.locator("#kind").select_option("image.generate")
    page.locator("#f-prompt").fill("a red fox")
    width = page.locator("#f-width")
    width.fill("10")
    page.locator("#submit").click()
    expect(page.locator("#f-width-problem")).to_have_text("Must be at least 64.")
    expect(width).to_have_attribute("aria-invalid", "true")
    expect(width).to_be_focused()
    assert posted == []

    width.fill("96")  # fixing the field clears its message
    expect(page.locator("#f-width-problem")).to_have_text("")
    expect(width).not_to_have_attribute("aria-invalid", "true")

    page.locator("#f-prompt").fill("   ")  # long enough here; the server refuses it (422)
    page.locator("#submit").click()
    expect(page.locator("#f-prompt-problem")).not_to_be_empty()
    expect(page.locator("#f-width-problem")).to_have_text("")
    assert tasks_of(cluster, user) == []

    page.locator("#f-prompt").fill("a red fox")
    expect(page.locator("#f-prompt-problem")).to_have_text("")
    page.locator("#submit").click()
    expect(page).to_have_url(TASK_PAGE)
    [stored] = tasks_of(cluster, user)
    assert stored["payload"]["prompt"] == "a red fox" and stored["payload"]["width"] == 96
    assert page.url.endswith(stored["id"])


def test_a_queued_task_is_cancelled_from_the_list_and_retried(
    page: Page, cluster: Cluster, user: str, tmp_path: Path
) -> None:
    waiting = submit(cluster, "video.generate", {"prompt": "rain on a window"}, user)
    page.goto("/#/tasks")
    rows = page.locator(".task-item")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row.locator(".badge")).to_have_text("queued")
    expect(row).to_contain_text("#1 in line")
    check_page(page, tmp_path, "tasks")

    row.get_by_role("button", name="Cancel").click()
    expect(row.locator(".badge")).to_have_text("cancelled")
    assert tasks_of(cluster, user)[0]["status"] == "cancelled"

    row.get_by_role("button", name="Retry").click()
    expect(rows).to_have_count(2)
    expect(rows.first.locator(".badge")).to_have_text("queued")
    again = tasks_of(cluster, user)[0]
    assert again["id"] != waiting["id"] and again["payload"] == waiting["payload"]

    page.locator("#filter-status").select_option("cancelled")
    expect(rows).to_have_count(1)
    page.reload()  # the filter is kept
    expect(page.locator("#filter-status")).to_have_value("cancelled")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".badge")).to_have_text("cancelled")


def test_the_list_follows_tasks_submitted_elsewhere_live(
    page: Page, cluster: Cluster, user: str
) -> None:
    page.goto("/#/tasks")
    expect(page.locator(".empty")).to_contain_text(f"No tasks yet for {user}")
    page.evaluate("window.__notReloaded = true")

    sleep = submit(cluster, "debug.sleep", {"seconds": 0.6, "steps": 3}, user)
    fail = submit(cluster, "debug.fail", {"message": "broken on purpose"}, user)
    slept = page.locator(f".task-item[data-id='{sleep['id']}']")
    failed = page.locator(f".task-item[data-id='{fail['id']}']")
    expect(slept).to_be_visible()
    expect(slept.locator(".badge")).to_have_text("succeeded", timeout=15_000)
    expect(failed.locator(".badge")).to_have_text("failed", timeout=15_000)
    expect(failed.locator(".task-error")).to_contain_text("broken on purpose")
    assert page.evaluate("window.__notReloaded") is True

    failed.locator("a.task-title").click()
    expect(page.locator("#task-error")).to_contain_text("broken on purpose")
    expect(page.locator("#retry")).to_be_visible()
    expect(page.locator("#cancel")).to_be_hidden()


def test_an_uploaded_frame_is_diagnosed_with_its_findings(
    page: Page, cluster: Cluster, user: str, tmp_path: Path
) -> None:
    from tests import diagnose_scenes as scenes

    frame = tmp_path / "gate.png"
    frame.write_bytes(scenes.encode(scenes.dark(scenes.blurred(scenes.scene()))))
    page.goto("/#/create")
    page.locator("#kind").select_option("image.diagnose")
    page.locator("#submit").click()  # no image chosen yet
    expect(page.locator("#f-image-problem")).to_have_text("Choose an image.")

    page.locator("#f-image").set_input_files(str(frame))
    expect(page.locator(".upload-status")).to_contain_text("640\u00d7480 PNG")
    expect(page.locator("#f-image-problem")).to_have_text("")
    page.locator("#f-camera_id").fill("gate-9")
    page.locator("#submit").click()
    expect(page).to_have_url(TASK_PAGE)

    findings = page.locator("#findings")
    expect(findings).to_be_visible(timeout=SLOW_MS)
    alerts = findings.locator("tr.finding-alert")
    expect(alerts.filter(has_text="dark")).to_have_count(1)
    expect(alerts.filter(has_text="blur")).to_have_count(1)
    [stored] = tasks_of(cluster, user)
    assert stored["payload"]["camera_id"] == "gate-9"
    assert stored["payload"]["image"]["upload"].startswith("u-")
    annotated = stored["result"]["annotated_url"]
    expect(page.locator("#result-image")).to_have_attribute("src", annotated)
    expect(page.locator("#result")).to_contain_text("gate-9")
    check_page(page, tmp_path, "diagnosis")


def test_an_unknown_task_says_so(page: Page, problems: Problems) -> None:
    problems.allowed_statuses.add(404)  # the page asks for a task that does not exist
    page.goto(f"/#/tasks/{'0' * 32}")
    expect(page.get_by_role("heading", name="Task not found")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="no task")).to_be_visible()


def tab_to(page: Page, target: str, presses: int = 60) -> None:
    """Press Tab until the element matching ``target`` has focus: it is reachable by
    keyboard, in the page's focus order."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", target):
            return
    raise AssertionError(f"{target} not reached with {presses} presses of Tab")


def test_the_keyboard_alone_submits_a_task_and_cancels_it(
    page: Page, cluster: Cluster, user: str
) -> None:
    page.goto("/")
    tab_to(page, "a.skip")
    page.keyboard.press("Enter")  # skip the navigation: focus goes to the view
    expect(page.locator("#view")).to_be_focused()
    tab_to(page, "#kind")
    page.keyboard.type("video.generate")  # a closed select picks the option typed
    expect(page.locator("#kind")).to_have_value("video.generate")
    tab_to(page, "#f-prompt")
    page.keyboard.type("waves at dawn")
    tab_to(page, "#submit")
    page.keyboard.press("Enter")
    expect(page).to_have_url(TASK_PAGE)
    [stored] = tasks_of(cluster, user)
    assert stored["kind"] == "video.generate" and stored["payload"]["prompt"] == "waves at dawn"

    page.goto("/#/tasks")
    expect(page.locator(".task-item .badge")).to_have_text("queued")
    tab_to(page, ".task-item button[aria-label^='Cancel']")
    page.keyboard.press("Enter")
    expect(page.locator(".task-item .badge")).to_have_text("cancelled")
    assert tasks_of(cluster, user)[0]["status"] == "cancelled"
