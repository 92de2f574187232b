"""``/v1/collections`` end to end: uploads ingested as a batch of ``feature.extract`` tasks by a
real worker, searched by the API process, still searchable after the API restarts."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import feature_images as pics
from tests.helpers import Cluster, wait_until

pytestmark = pytest.mark.system


@pytest.fixture
def features_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """API with an input root, and one worker on the ``features`` queue."""
    inputs = tmp_path / "inputs"
    (inputs / "shots").mkdir(parents=True)
    pics.astronaut().save(inputs / "shots" / "astronaut.jpg")
    c = Cluster(tmp_path / "data", extra_env={"GENQUEUE_INPUT_ROOT": str(inputs)})
    c.data_dir.mkdir()
    c.start_api()
    c.start_worker(queues="features", concurrency=2)
    yield c
    c.stop()


def upload(http: httpx.Client, image: Any) -> str:
    answer = http.post(
        "/v1/uploads", content=pics.encode(image), headers={"Content-Type": "image/jpeg"}
    )
    assert answer.status_code == 201, answer.text
    upload_id: str = answer.json()["id"]
    return upload_id


def restart_api(cluster: Cluster) -> None:
    assert cluster.api is not None
    cluster.api.send_signal(signal.SIGTERM)
    cluster.api.wait(15)
    cluster.start_api()


def test_ingest_search_and_restart(features_cluster: Cluster) -> None:
    cluster = features_cluster
    images = pics.gallery(10)
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        created = http.post("/v1/collections", json={"name": "photos"})
        assert created.status_code == 201, created.text
        assert http.post("/v1/collections", json={"name": "photos"}).status_code == 200
        items = [
            {"image": {"upload": upload(http, im)}, "id": f"img-{i}"} for i, im in enumerate(images)
        ]
        answer = http.post(
            "/v1/collections/photos/items", json={"items": items, "images_per_task": 3}
        )
        assert answer.status_code == 202, answer.text
        assert (answer.json()["tasks"], answer.json()["items"]) == (4, 10)

        def done(answer: httpx.Response) -> dict[str, Any]:
            def finished() -> dict[str, Any] | None:
                batch: dict[str, Any] = http.get(answer.json()["links"]["batch"]).json()
                return batch if batch["finished"] else None

            return wait_until(finished, 60, 0.1, "the ingest batch to finish")

        batch = done(answer)
        assert batch["counts"].get("succeeded") == 4, (batch, cluster.logs())
        wait_until(
            lambda: http.get("/v1/collections/photos").json()["size"] == 10,
            10,
            0.05,
            "the API to index every vector",
        )

        query = {"image": {"upload": upload(http, pics.edited(images[0]))}, "k": 3}
        found = http.post("/v1/collections/photos/search", json=query)
        assert found.status_code == 200, found.text
        best = found.json()["results"][0]
        assert best["id"] == "img-0" and best["score"] > 0.8

        # A folder under the input root is ingested too; one outside it is refused.
        folder = http.post("/v1/collections/photos/items", json={"folder": "shots"})
        assert folder.status_code == 202 and folder.json()["items"] == 1, folder.text
        outside = http.post("/v1/collections/photos/items", json={"folder": "../data"})
        assert outside.status_code == 403, outside.text
        assert done(folder)["counts"].get("succeeded") == 1, cluster.logs()
        wait_until(
            lambda: http.get("/v1/collections/photos").json()["size"] == 11, 10, 0.05, "11 items"
        )

        restart_api(cluster)
        again = http.post("/v1/collections/photos/search", json=query)
        assert again.status_code == 200, again.text
        assert again.json()["results"][0]["id"] == "img-0"
        assert http.get("/v1/collections/photos").json()["size"] == 11
        listed = {c["name"]: c for c in http.get("/v1/collections").json()}
        assert listed["photos"]["dim"] == 1280

        missing = http.post("/v1/collections/nope/search", json=query)
        assert missing.status_code == 404 and "'nope'" in missing.json()["message"]
        bad = http.post(
            "/v1/collections/photos/search", json={"image": {"base64": "bm90IGFuIGltYWdl"}}
        )
        assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "image"
        escape = http.post(
            "/v1/collections/photos/search", json={"image": {"path": "../../etc/passwd"}}
        )
        assert escape.status_code == 403, escape.text
