"""The console's batches and search pages in a real Chromium, against a real API and one worker
serving the ``image`` and ``features`` queues (nothing serves ``video``, so a batch of
``video.generate`` tasks stays queued until it is cancelled)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests import feature_images as pics
from tests.console.conftest import (
    DESKTOP,
    PHONE,
    SLOW_MS,
    axe_violations,
    no_horizontal_scroll,
    screenshots,
)
from tests.helpers import Cluster, wait_until

pytestmark = pytest.mark.browser

BATCH_ID = re.compile(r"#/batches/[0-9a-f]{32}$")
SCORE = re.compile(r"^score (0|1)\.\d{3}$")
PROMPTS = [
    "a lighthouse at sunset",
    "snowy mountains at night",
    "a city skyline in the rain",
    "ocean waves on a rocky shore",
    "desert dunes under a blue sky",
    "a field of sunflowers",
    "an abstract neon spiral",
    "a green tropical island",
    "a steam train crossing a bridge",
    "a bowl of ramen",
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("console-batches"))
    c.start_api()
    c.start_worker(queues="image,features", concurrency=2)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batches-search-screenshots")


def as_user(page: Page, user: str) -> None:
    """The console's user for this page: each test sees only its own batches."""
    page.add_init_script(f"localStorage.setItem('genqueue.user', '{user}')")


def check_layout(page: Page, shots: Path, name: str) -> None:
    """No serious accessibility problem, screenshots, and no sideways scroll on a phone."""
    assert axe_violations(page) == []
    screenshots(page, shots, name)
    # Spelt out: conftest's sizes are plain dicts, not Playwright's ViewportSize.
    page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
    assert no_horizontal_scroll(page)
    page.set_viewport_size({"width": DESKTOP["width"], "height": DESKTOP["height"]})


def submit_batch(page: Page) -> None:
    page.get_by_role("button", name="Submit batch").click()
    expect(page).to_have_url(BATCH_ID)


def test_a_batch_of_prompts_finishes_live_with_its_thumbnails(page: Page, shots: Path) -> None:
    as_user(page, "ann")
    page.goto("/#/batches")
    expect(page.get_by_text("No batches yet")).to_be_visible()
    page.get_by_label("Prompts").fill("\n".join(PROMPTS))
    expect(page.locator("#batch-tally")).to_have_text("10 tasks")
    page.get_by_label("Width").fill("10")
    page.get_by_label("Height").fill("64")
    page.get_by_label("Steps").fill("2")
    page.get_by_role("button", name="Submit batch").click()
    expect(page.locator("#opt-width-problem")).to_contain_text("greater than or equal to 64")
    expect(page.get_by_label("Width")).to_have_attribute("aria-invalid", "true")
    check_layout(page, shots, "batches-form")

    page.get_by_label("Width").fill("64")
    submit_batch(page)
    expect(page.locator(".tile")).to_have_count(10)
    expect(page.locator("#batch-done")).to_have_text("10/10", timeout=SLOW_MS)
    expect(page.locator(".tile img")).to_have_count(10)
    expect(page.locator(".counts li")).to_have_text(["succeeded10"])
    expect(page.get_by_role("button", name="Cancel the rest")).to_be_disabled()
    check_layout(page, shots, "batch-succeeded")

    page.get_by_role("link", name="Batches").click()
    expect(page.locator("#recent-batches tbody tr")).to_have_count(1)
    expect(page.locator("#recent-batches td.done")).to_have_text("10/10")
    check_layout(page, shots, "batches-recent")


def test_cancel_the_rest_of_a_batch_nothing_serves(page: Page, shots: Path) -> None:
    as_user(page, "bob")
    page.goto("/#/batches")
    page.get_by_label("Kind").select_option("video.generate")
    expect(page.get_by_label("Aspect Ratio")).to_be_visible()
    page.get_by_label("Prompts").fill("rain on a window\nwaves at dusk\na candle flame")
    submit_batch(page)
    expect(page.locator("#batch-done")).to_have_text("0/3")
    expect(page.locator(".tile .badge")).to_have_text(["queued"] * 3)

    page.get_by_role("button", name="Cancel the rest").click()
    expect(page.locator("#batch-done")).to_have_text("3/3")
    expect(page.locator(".tile .badge")).to_have_text(["cancelled"] * 3)
    expect(page.locator(".counts li")).to_have_text(["cancelled3"])
    expect(page.locator("#batch-note")).to_have_text("Cancel requested for 3 unfinished tasks.")
    expect(page.get_by_role("button", name="Cancel the rest")).to_be_disabled()
    check_layout(page, shots, "batch-cancelled")


def upload(http: httpx.Client, data: bytes) -> str:
    answer = http.post("/v1/uploads", content=data, headers={"Content-Type": "image/jpeg"})
    assert answer.status_code == 201, answer.text
    upload_id: str = answer.json()["id"]
    return upload_id


def test_search_a_collection_with_an_uploaded_image(
    page: Page, cluster: Cluster, shots: Path, tmp_path: Path
) -> None:
    page.goto("/#/search")
    expect(page.get_by_text("No collections yet")).to_be_visible()
    check_layout(page, shots, "search-empty")

    images = [pics.scene(i, size=128) for i in range(4)]
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        assert http.post("/v1/collections", json={"name": "catalogue"}).status_code == 201
        ids = [upload(http, pics.encode(image)) for image in images]
        items = [{"image": {"upload": upload_id}} for upload_id in ids]  # named by upload id
        ingest = http.post("/v1/collections/catalogue/items", json={"items": items})
        assert ingest.status_code == 202, ingest.text
        wait_until(
            lambda: http.get("/v1/collections/catalogue").json()["size"] == 4,
            60,
            0.1,
            "the collection to hold 4 items",
        )
    query = tmp_path / "query.jpg"
    query.write_bytes(pics.encode(pics.edited(images[0])))

    page.reload()
    page.get_by_label("Collection").select_option("catalogue")
    page.get_by_label("Image", exact=True).set_input_files(query)
    page.get_by_role("button", name="Search", exact=True).click()
    hits = page.locator("#search-results .hits li")
    expect(hits).to_have_count(4, timeout=SLOW_MS)
    expect(hits.first.locator(".item-id")).to_have_text(ids[0])
    expect(hits.locator(".score")).to_have_text([SCORE] * 4)
    expect(page.locator("#search-results img.thumb")).to_have_count(4)
    check_layout(page, shots, "search-collection")


def test_similar_past_prompts_rank_the_closest_first(
    page: Page, cluster: Cluster, shots: Path
) -> None:
    prompts = ["a red fox in the snow", "a bowl of noodle soup", "a sailing boat on a calm lake"]
    with httpx.Client(base_url=cluster.url, timeout=90) as http:
        ids = [
            http.post(
                "/v1/tasks",
                json={
                    "kind": "image.generate",
                    "payload": {"prompt": p, "width": 64, "height": 64, "steps": 2},
                },
            ).json()["id"]
            for p in prompts
        ]
        for task_id in ids:
            done = http.get(f"/v1/tasks/{task_id}/wait", params={"timeout": 60}).json()
            assert done["status"] == "succeeded", done

    page.goto("/#/search")
    page.get_by_label("Prompt", exact=True).fill("a fox standing in snow")
    page.get_by_role("button", name="Find similar").click()
    hits = page.locator("#prompt-results .hits li")
    expect(hits.first.locator("a.prompt")).to_have_text(prompts[0], timeout=SLOW_MS)
    expect(hits.first.locator(".score")).to_have_text(SCORE)
    expect(hits.first.locator("img.thumb")).to_be_visible()
    check_layout(page, shots, "search-prompts")
