"""The result cache end to end: a real API with keys, one worker. A repeated submission of a
deterministic kind answers 200 at once with the original task (``cached: true``), stores and
runs nothing; another user's identical submission is never answered with it; ``Cache-Control:
no-cache`` (``client.run(..., cache=False)``) runs anew."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from genqueue import Client
from tests.helpers import Cluster, cli_key, json_of

pytestmark = pytest.mark.system

PICTURE = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 1, "seed": 7}


@dataclass
class Deployment:
    cluster: Cluster
    keys: dict[str, str]

    def http(self, user: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[user]}"}
        return httpx.Client(base_url=self.cluster.url, headers=headers, timeout=60)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    cluster = Cluster(tmp_path, {"GENQUEUE_AUTH": "on"})
    try:
        cluster.start_api()
        cluster.start_worker()
        keys = {
            "ann": cli_key(cluster, "ann", "user"),
            "bob": cli_key(cluster, "bob", "user"),
            "ops": cli_key(cluster, "ops", "operator"),
        }
        yield Deployment(cluster, keys)
    finally:
        cluster.stop()


def submit(http: httpx.Client, payload: dict[str, Any], status: int, **headers: str) -> Any:
    body = {"kind": "image.generate", "payload": payload}
    return json_of(http.post("/v1/tasks", json=body, headers=headers), status)


def finished(http: httpx.Client, task_id: str) -> Any:
    task = json_of(http.get(f"/v1/tasks/{task_id}/wait", params={"timeout": 60}))
    assert task["status"] == "succeeded", task
    return task


def cache_hits(http: httpx.Client) -> float:
    metrics = http.get("/metrics")
    assert metrics.status_code == 200
    for line in metrics.text.splitlines():
        if line.startswith('genqueue_cache_hits_total{kind="image.generate"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_repeated_submission_is_answered_from_the_cache_per_user(
    deployment: Deployment,
) -> None:
    with deployment.http("ann") as ann, deployment.http("bob") as bob:
        original = finished(ann, submit(ann, PICTURE, 201)["id"])

        again = ann.post("/v1/tasks", json={"kind": "image.generate", "payload": PICTURE})
        hit = json_of(again, 200)
        assert again.headers["location"] == f"/v1/tasks/{original['id']}"
        assert (hit["id"], hit["status"], hit["cached"]) == (original["id"], "succeeded", True)
        assert hit["result"] == original["result"]
        # The same payload spelled otherwise (defaults written out, another key order).
        spelled = {"seed": 7, "style": "default", "engine": "procedural", **PICTURE}
        assert submit(ann, spelled, 200)["id"] == original["id"]
        assert json_of(ann.get(f"/v1/tasks/{original['id']}"))["cached"] is False

        bobs = submit(bob, PICTURE, 201)  # never ann's task
        assert bobs["id"] != original["id"] and bobs["cached"] is False
        fresh = submit(ann, PICTURE, 201, **{"Cache-Control": "no-cache"})
        other_seed = submit(ann, {**PICTURE, "seed": 8}, 201)
        for task in (bobs, fresh, other_seed):
            finished(bob if task is bobs else ann, task["id"])
        echo = {"kind": "debug.echo", "payload": {"n": 1}}
        first_echo = json_of(ann.post("/v1/tasks", json=echo), 201)  # not deterministic
        assert json_of(ann.post("/v1/tasks", json=echo), 201)["id"] != first_echo["id"]

        # Nothing stored for the hits, and each stored task ran once.
        listed = {
            t["id"]
            for t in json_of(ann.get("/v1/tasks", params={"kind": "image.generate"}))["items"]
        }
        assert listed == {original["id"], fresh["id"], other_seed["id"]}
        runs = deployment.cluster.succeeded_counts()
        assert [runs.get(t["id"]) for t in (original, bobs, fresh, other_seed)] == [1, 1, 1, 1]
    with deployment.http("ops") as ops:
        assert cache_hits(ops) == 2.0


def test_the_client_shows_cached_and_cache_false_runs_anew(deployment: Deployment) -> None:
    with Client(deployment.cluster.url, api_key=deployment.keys["ann"]) as client:
        first = client.run("image.generate", PICTURE)
        hit = client.submit("image.generate", PICTURE)
        assert hit.cached and hit.result == first
        assert client.run("image.generate", PICTURE) == first  # served, nothing waited for
        anew = client.submit("image.generate", PICTURE, cache=False)
        assert not anew.cached and anew.id != hit.id
        assert client.run("image.generate", PICTURE, cache=False)["image_url"] not in (
            first["image_url"],
            None,
        )
        assert client.wait(anew.id, 60).status == "succeeded"
