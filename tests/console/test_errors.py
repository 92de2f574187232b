"""The console when the API goes away: the banner says so while it is down and clears by itself
once the API is back, and the live list picks up what happened meanwhile."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import axe_violations
from tests.helpers import Cluster, json_of

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("console-errors"))
    try:
        cluster.start_api()
        yield cluster
    finally:
        cluster.stop()


def test_the_banner_shows_while_the_api_is_down_and_clears_when_it_is_back(
    page: Page, cluster: Cluster
) -> None:
    page.goto("/#/tasks")
    banner = page.locator("#banner")
    expect(page.get_by_role("heading", level=2)).to_be_visible()
    expect(banner).to_be_hidden()

    assert cluster.api is not None
    cluster.api.terminate()  # the page's event stream breaks
    cluster.api.wait(15)
    expect(banner).to_be_visible(timeout=15_000)
    expect(banner).to_contain_text("cannot be reached")
    assert axe_violations(page) == []

    cluster.start_api()  # same port: the stream reconnects by itself
    expect(banner).to_be_hidden(timeout=20_000)
    body = {"kind": "debug.echo", "payload": {}, "user": "console"}
    task_id = json_of(httpx.post(f"{cluster.url}/v1/tasks", json=body, timeout=10), 201)["id"]
    expect(
        page.locator(f"[data-task='{task_id}'], a[href='#/tasks/{task_id}']").first
    ).to_be_visible(timeout=15_000)
