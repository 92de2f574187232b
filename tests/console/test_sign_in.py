"""The console behind API keys (GENQUEUE_AUTH=on), in a real Chromium: it asks for a key, says
so when one is wrong, then shows the signed-in user's own tasks only, live, and signs out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import (
    PHONE,
    Problems,
    axe_violations,
    no_horizontal_scroll,
    screenshots,
)
from tests.helpers import Cluster, cli_key, json_of

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """An API that asks for keys; no worker, so tasks stay queued where the test sees them."""
    cluster = Cluster(tmp_path_factory.mktemp("console-keys"), extra_env={"GENQUEUE_AUTH": "on"})
    try:
        cluster.start_api()
        yield cluster
    finally:
        cluster.stop()


def submit_as(cluster: Cluster, key: str, prompt: str) -> str:
    body = {"kind": "video.generate", "payload": {"prompt": prompt}}
    headers = {"Authorization": f"Bearer {key}"}
    reply = httpx.post(f"{cluster.url}/v1/tasks", json=body, headers=headers, timeout=10)
    task_id: str = json_of(reply, 201)["id"]
    return task_id


def test_the_console_signs_in_with_a_key_and_shows_only_its_users_tasks(
    page: Page, cluster: Cluster, problems: Problems, tmp_path: Path
) -> None:
    ann, bob = cli_key(cluster, "ann", "user"), cli_key(cluster, "bob", "user")
    bobs = submit_as(cluster, bob, "bob's rain")

    page.goto("/#/tasks")
    key = page.locator("#sign-in-key")
    expect(key).to_be_focused()
    assert axe_violations(page) == []
    page.set_viewport_size(PHONE)
    assert no_horizontal_scroll(page)
    screenshots(page, tmp_path, "sign-in")

    key.fill("gq_" + "x" * 40)  # well formed, but no such key
    page.locator("#sign-in").click()
    expect(page.locator("#sign-in-key-problem")).to_contain_text("not valid")
    expect(key).to_have_attribute("aria-invalid", "true")

    key.fill(ann)
    key.press("Enter")
    expect(page.locator("#signed-in")).to_have_text("ann · user")
    expect(page.locator(".empty")).to_contain_text("No tasks yet for ann")
    anns = submit_as(cluster, ann, "ann's waves")  # arrives live, through the cookie's stream
    expect(page.locator(f".task-item[data-id='{anns}']")).to_be_visible()
    expect(page.locator(f".task-item[data-id='{bobs}']")).to_have_count(0)

    problems.allowed_statuses.add(404)
    page.goto(f"/#/tasks/{bobs}")  # another user's task is as unknown as a made-up id
    expect(page.locator("#view")).to_contain_text("not found", ignore_case=True)

    page.locator("#sign-out").click()
    expect(page.locator("#sign-in-key")).to_be_visible()
    page.reload()  # the cookie is gone: still signed out
    expect(page.locator("#sign-in-key")).to_be_visible()
