"""Seed 002 (Futu) against genqueue on Redis, as the seed ran: its request examples replayed
verbatim, then with the same shapes on real pictures under the input root; its own variables
(FEATURE_TIMEOUT, BATCH_FEATURE_TIMEOUT) taking effect; docs/migrating/002-futu.md."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from genqueue.api.app import create_app
from genqueue.api.compat.futu import FutuEnv, lifespan, task_path
from genqueue.errors import ConfigError, ForbiddenPathError
from genqueue.settings import load_settings
from tests import feature_images as pics
from tests.helpers import Cluster

pytestmark = [pytest.mark.system, pytest.mark.redis]

SINGLE = "/api/compute/feature_extraction"
BATCH = "/api/compute/batch_feature_extraction"
TAG = "Futu feature extraction (seed 002)"
# The seed document's examples, byte for byte.
SEED_SINGLE = {"image_path": "/path/to/image.jpg"}
SEED_BATCH = {"image_paths": ["/path/to/image1.jpg", "/path/to/image2.jpg"], "timeout": 60}


def write_inputs(root: Path) -> None:
    """The seed's file names, as real 64x64 JPEGs, under the input root; and a broken one."""
    folder = root / "path" / "to"
    folder.mkdir(parents=True)
    pics.astronaut().resize((64, 64)).save(folder / "image.jpg")
    pics.astronaut().resize((64, 64)).save(folder / "image1.jpg")
    pics.scene(1, size=64).save(folder / "image2.jpg")
    (folder / "broken.jpg").write_bytes(b"not a picture")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("futu-inputs")
    write_inputs(path)
    return path


@pytest.fixture(scope="module")
def http(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """API and one ``feature.extract`` worker on Redis, with the seed's defaults."""
    data = tmp_path_factory.mktemp("futu-data")
    cluster = Cluster(data, {"GENQUEUE_INPUT_ROOT": str(root)}, backend="redis")
    try:
        cluster.start_api()
        cluster.start_worker(queues="features", concurrency=2, preload=True)
        with httpx.Client(base_url=cluster.url, timeout=30) as client:
            yield client
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def idle(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """An API with no worker and the seed's waits set short, so every wait runs out."""
    data = tmp_path_factory.mktemp("futu-idle")
    env = {
        "GENQUEUE_INPUT_ROOT": str(root),
        "FEATURE_TIMEOUT": "0.4",
        "BATCH_FEATURE_TIMEOUT": "0.6s",
    }
    cluster = Cluster(data, env, backend="redis")
    try:
        cluster.start_api()
        with httpx.Client(base_url=cluster.url, timeout=30) as client:
            yield client
    finally:
        cluster.stop()


def under(root: Path, body: dict[str, Any]) -> dict[str, Any]:
    """The seed's example with its absolute paths moved under the input root."""
    if "image_path" in body:
        return {**body, "image_path": f"{root}{body['image_path']}"}
    return {**body, "image_paths": [f"{root}{p}" for p in body["image_paths"]]}


def assert_features(answer: dict[str, Any]) -> None:
    assert answer["success"] is True, answer
    assert answer["status"] == "succeeded"
    assert answer["dim"] == 1280 and len(answer["features"]) == 1280
    assert math.isclose(math.hypot(*answer["features"]), 1.0, rel_tol=1e-3)
    assert answer["status_url"] == f"/v1/tasks/{answer['task_id']}"
    assert answer["labels"] and answer["model"]


def test_seed_examples_verbatim_are_refused_outside_the_input_root(
    http: httpx.Client,
) -> None:
    tasks_before = http.get("/v1/tasks", params={"kind": "feature.extract"}).json()["items"]
    single = http.post(SINGLE, json=SEED_SINGLE)
    assert single.status_code == 403, single.text
    body = single.json()
    assert body["error"] == "forbidden_path"
    assert body["fields"][0]["field"] == "image_path"
    assert "'/path/to/image.jpg' is outside the input root" in body["message"]
    batch = http.post(BATCH, json=SEED_BATCH)
    assert batch.status_code == 403, batch.text
    assert batch.json()["fields"][0]["field"] == "image_paths.0"
    tasks_after = http.get("/v1/tasks", params={"kind": "feature.extract"}).json()["items"]
    assert tasks_after == tasks_before  # refused before anything was stored


def test_single_extraction_answers_the_features(http: httpx.Client, root: Path) -> None:
    answer = http.post(SINGLE, json=under(root, SEED_SINGLE))
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert_features(found)
    assert found["image_path"] == f"{root}/path/to/image.jpg"
    task = http.get(found["status_url"]).json()
    assert (task["status"], task["payload"]["image"]) == (
        "succeeded",
        {"path": "path/to/image.jpg", "upload": None, "base64": None},
    )
    relative = http.post(SINGLE, json={"image_path": "path/to/image.jpg"}).json()
    assert_features(relative)
    assert relative["features"] == pytest.approx(found["features"], abs=1e-5)


def test_batch_answers_every_path_in_order(http: httpx.Client, root: Path) -> None:
    answer = http.post(BATCH, json=under(root, SEED_BATCH))
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["success"], found["total"], found["succeeded"]) == (True, 2, 2)
    assert (found["failed"], found["pending"], found["timed_out"]) == (0, 0, False)
    assert [r["image_path"] for r in found["results"]] == under(root, SEED_BATCH)["image_paths"]
    for result in found["results"]:
        assert_features(result)
    batch = http.get(f"/v1/batches/{found['batch_id']}").json()
    assert (batch["finished"], batch["counts"]["succeeded"]) == (True, 2)


def test_one_unreadable_path_does_not_fail_the_others(http: httpx.Client, root: Path) -> None:
    paths = [f"{root}/path/to/image1.jpg", "path/to/missing.jpg", "path/to/broken.jpg"]
    found = http.post(BATCH, json={"image_paths": paths}).json()
    assert (found["success"], found["succeeded"], found["failed"]) == (False, 1, 2), found
    ok, missing, broken = found["results"]
    assert_features(ok)
    assert (missing["success"], missing["status"]) == (False, "failed")
    assert "no file 'path/to/missing.jpg'" in missing["error"]
    assert "not an image" in broken["error"]
    single = http.post(SINGLE, json={"image_path": "path/to/missing.jpg"})
    assert single.status_code == 422, single.text
    assert single.json()["success"] is False and single.json()["task_id"]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        (SINGLE, {}, 422, "image_path"),
        (SINGLE, {"image_path": ""}, 422, "image_path"),
        (SINGLE, {"image_path": "a.jpg", "timeout": 0}, 422, "timeout"),
        (SINGLE, {"image_path": "../etc/passwd"}, 403, "image_path"),
        (BATCH, {"image_paths": []}, 422, "image_paths"),
        (BATCH, {"image_paths": ["a.jpg", 7]}, 422, "image_paths.1"),
        (BATCH, {"image_paths": ["a.jpg"], "timeout": "soon"}, 422, "timeout"),
        (BATCH, {"image_paths": ["a.jpg", "/etc/passwd"]}, 403, "image_paths.1"),
    ],
)
def test_bad_requests_name_the_field(
    http: httpx.Client, path: str, body: dict[str, Any], status: int, field: str
) -> None:
    answer = http.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["fields"][0]["field"] == field


def test_health_and_openapi_serve_the_seed(http: httpx.Client) -> None:
    health = http.get("/health")
    assert (health.status_code, health.json()) == (
        200,
        {"status": "ok", "store": "ok", "broker": "ok"},
    )
    paths = http.get("/openapi.json").json()["paths"]
    assert paths[SINGLE]["post"]["tags"] == [TAG]
    assert paths[BATCH]["post"]["tags"] == [TAG]


def test_feature_timeout_runs_out_naming_the_task(idle: httpx.Client, root: Path) -> None:
    started = time.monotonic()
    answer = idle.post(SINGLE, json=under(root, SEED_SINGLE))
    assert time.monotonic() - started >= 0.4
    assert answer.status_code == 504, answer.text
    found = answer.json()
    assert (found["success"], found["status"]) == (False, "queued")
    assert found["error"].startswith("not finished within 0.4 s")
    assert idle.get(found["status_url"]).json()["status"] == "queued"


def test_batch_timeout_comes_from_env_or_the_request(idle: httpx.Client, root: Path) -> None:
    body = under(root, SEED_BATCH)
    found = idle.post(BATCH, json={"image_paths": body["image_paths"]}).json()
    assert (found["timed_out"], found["pending"], found["success"]) == (True, 2, False)
    assert found["results"][0]["error"].startswith("not finished within 0.6 s")
    assert all(r["position"] >= 1 and "features" not in r for r in found["results"])
    asked = idle.post(BATCH, json={**body, "timeout": 0.2}).json()
    assert asked["results"][1]["error"].startswith("not finished within 0.2 s")


def test_paths_map_under_the_root_or_are_refused(tmp_path: Path) -> None:
    assert task_path(f"{tmp_path}/a/b.jpg", tmp_path, "f") == "a/b.jpg"
    assert task_path(f"{tmp_path}/a/../b.jpg", tmp_path, "f") == "b.jpg"
    assert task_path("./a//b.jpg", tmp_path, "f") == "a/b.jpg"
    for path, root in [
        ("/x/b.jpg", tmp_path),
        (f"{tmp_path}/../b.jpg", tmp_path),
        ("/b.jpg", None),
    ]:
        with pytest.raises(ForbiddenPathError):
            task_path(path, root, "f")


async def test_seed_env_is_read_at_start_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_TIMEOUT", "45s")
    monkeypatch.setenv("BATCH_FEATURE_TIMEOUT", "90")
    assert FutuEnv(_env_file=None) == FutuEnv(feature_timeout=45, batch_feature_timeout=90)
    monkeypatch.setenv("FEATURE_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="FEATURE_TIMEOUT='soon'"):
        async with lifespan(FastAPI()):
            pass


def test_switched_off_it_is_not_mounted() -> None:
    on = create_app(load_settings()).openapi()["paths"]
    off = create_app(load_settings(compat={"futu": False})).openapi()["paths"]
    assert SINGLE in on and BATCH in on
    assert SINGLE not in off and BATCH not in off
