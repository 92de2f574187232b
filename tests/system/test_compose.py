"""``image.compose`` and the guided ``image.generate`` end to end: an uploaded product photo
composed on a generated background, and a classifier-guided render, each run by a real
worker's process pool, with their PNGs served by the API."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from genqueue import Client, TaskStatus
from tests.helpers import Cluster
from tests.test_compose import encode, shirt

pytestmark = pytest.mark.system


def fetch_png(http: httpx.Client, url: str) -> Image.Image:
    answer = http.get(url)
    assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(answer.content))


def test_compose_and_guided_generate_succeed_with_served_pngs(cluster: Cluster) -> None:
    cluster.start_worker(queues="image", concurrency=2)
    with httpx.Client(base_url=cluster.url, timeout=30) as http, Client(cluster.url) as client:
        upload = http.post(
            "/v1/uploads", content=encode(shirt()[0]), headers={"Content-Type": "image/png"}
        )
        assert upload.status_code == 201, upload.text
        compose = client.submit(
            "image.compose",
            {
                "foreground": {"upload": upload.json()["id"]},
                "background": {"prompt": "sunset over the ocean", "seed": 2},
                "width": 320,
                "height": 240,
                "layout": {"position": "center", "scale": 0.5, "rotation": 10},
                "caption": {"text": "Summer", "size": 24},
            },
        )
        guided = client.submit(
            "image.generate",
            {"prompt": "a red fox", "engine": "guided", "width": 96, "height": 96, "steps": 3},
        )
        composed = client.wait(compose.id, timeout_s=60)
        assert composed.status == TaskStatus.SUCCEEDED, (composed.error, cluster.logs())
        assert composed.result is not None and composed.result["cutout"] == "grabcut"
        assert fetch_png(http, composed.result["image_url"]).size == (320, 240)
        assert fetch_png(http, composed.result["mask_url"]).mode == "L"

        generated = client.wait(guided.id, timeout_s=90)
        assert generated.status == TaskStatus.SUCCEEDED, (generated.error, cluster.logs())
        result = generated.result
        assert result is not None and result["engine"] == "guided"
        assert result["generator"] == "classifier-guided synthesis (EfficientNet-Lite0 + MiniLM)"
        assert result["classes"][0]["name"] == "red fox"
        assert fetch_png(http, result["image_url"]).size == (96, 96)


def test_a_corrupt_foreground_fails_without_retries(cluster: Cluster) -> None:
    cluster.start_worker(queues="image", concurrency=1)
    with httpx.Client(base_url=cluster.url, timeout=30) as http, Client(cluster.url) as client:
        bad = client.submit(
            "image.compose",
            {
                "foreground": {"base64": "iVBORw0KGgoAAAANSUhEUg=="},
                "background": {"colour": "#ffffff"},
            },
        )
        done = client.wait(bad.id, timeout_s=30)
        assert done.status == TaskStatus.FAILED and done.attempts == 1
        assert "foreground" in str(done.error)
        refused = http.post(
            "/v1/tasks",
            json={
                "kind": "image.compose",
                "payload": {
                    "foreground": {"base64": "AAAA"},
                    "background": {"colour": "#ffffff"},
                    "layout": {"scale": -1},
                },
            },
        )
        assert refused.status_code == 422
        assert any(f["field"] == "payload.layout.scale" for f in refused.json()["fields"])
