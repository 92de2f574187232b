"""``feature.extract`` throughput and collection search latency (not a test).

    python -m bench.features [--images 96] [--vectors 100000]

* direct: the handler called in this process on ``--images`` images, ``images`` of 1, 8 and 32
  per call (inline PNGs, so decoding is included): images/s and p50 time per call;
* end to end: the same images uploaded, then ingested through ``/v1/collections/.../items``
  with 1, 8 and 32 images per task, run by one worker: images/s from submit to the batch
  finished, and p50 of each task's run time (started -> finished);
* search: a collection of ``--vectors`` random unit vectors searched through the HTTP API
  (query embedding included), p50 and first (index load) times; and FAISS alone.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np

from genqueue.artifacts import ArtifactStore
from genqueue.handlers.features.extract import run_extract
from genqueue.handlers.features.models import FeaturePayload
from genqueue.inputs import InputReader
from genqueue.ml.effnet import load_embedder
from genqueue.settings import FeatureSettings
from genqueue.vectors.index import CollectionIndex, Item
from genqueue.worker.execution import LocalContext
from tests import feature_images as pics
from tests.helpers import Cluster, wait_until

SIZES = (1, 8, 32)


def direct(images: list[bytes], size: int, folder: Path) -> tuple[float, float]:
    root = str(folder / "artifacts")
    ctx = LocalContext("bench", 1, ArtifactStore(root), InputReader(root, None, 10**8))
    settings = FeatureSettings()
    model = load_embedder(settings.model_path, settings.intra_op_threads)
    calls: list[float] = []
    started = time.perf_counter()
    for start in range(0, len(images), size):
        chunk = [{"base64": base64.b64encode(b).decode()} for b in images[start : start + size]]
        payload = FeaturePayload.model_validate({"images": chunk})
        t = time.perf_counter()
        run_extract(payload, ctx, settings, model)
        calls.append(time.perf_counter() - t)
    return len(images) / (time.perf_counter() - started), statistics.median(calls)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def end_to_end(http: httpx.Client, uploads: list[str], size: int) -> tuple[float, float]:
    name = f"bench-{size}"
    http.post("/v1/collections", json={"name": name}).raise_for_status()
    items = [{"image": {"upload": u}, "id": f"{i}"} for i, u in enumerate(uploads)]
    started = time.perf_counter()
    answer = http.post(
        f"/v1/collections/{name}/items", json={"items": items, "images_per_task": size}
    )
    answer.raise_for_status()
    batch_id = answer.json()["batch_id"]

    def finished() -> bool:
        return bool(http.get(f"/v1/batches/{batch_id}").json()["finished"])

    wait_until(finished, 600, 0.02, "the batch")
    elapsed = time.perf_counter() - started
    tasks = http.get("/v1/tasks", params={"batch_id": batch_id, "limit": 500}).json()["items"]
    assert all(t["status"] == "succeeded" for t in tasks), [t["error"] for t in tasks]
    runs = [_ts(t["finished_at"]) - _ts(t["started_at"]) for t in tasks]
    return len(uploads) / elapsed, statistics.median(runs)


def search_figures(cluster: Cluster, http: httpx.Client, vectors: int) -> dict[str, float]:
    """Write a ``vectors``-item index while the API is down, then query it over HTTP."""
    http.post("/v1/collections", json={"name": "big"}).raise_for_status()
    assert cluster.api is not None
    cluster.api.terminate()
    cluster.api.wait(30)
    folder = cluster.data_dir / "collections" / "big"
    generation = json.loads((folder / "collection.json").read_text())["generation"]
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((vectors, 1280)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    index = CollectionIndex(1280, generation)
    for start in range(0, vectors, 10_000):
        part = matrix[start : start + 10_000]
        index.add(f"t{start}", [Item(f"v{start + i}", v) for i, v in enumerate(part)])
    faiss_runs = []
    for q in matrix[:20]:
        t = time.perf_counter()
        index.search(q, 10, None)
        faiss_runs.append(time.perf_counter() - t)
    index.save(folder)
    cluster.start_api()
    query = {"image": {"base64": base64.b64encode(pics.encode(pics.astronaut())).decode()}}
    times = []
    for _ in range(21):
        t = time.perf_counter()
        http.post("/v1/collections/big/search", json=query).raise_for_status()
        times.append(time.perf_counter() - t)
    return {
        "faiss_p50_s": statistics.median(faiss_runs),
        "first_http_s": times[0],
        "http_p50_s": statistics.median(times[1:]),
        "http_max_s": max(times[1:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--vectors", type=int, default=100_000)
    args = parser.parse_args()
    gallery = pics.gallery(12)
    images = [pics.encode(gallery[i % len(gallery)], "PNG") for i in range(args.images)]
    rows: list[tuple[str, int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        direct(images[:8], 8, folder)  # warm the model
        for size in SIZES:
            rows.append(("direct", size, *direct(images, size, folder)))
        (folder / "data").mkdir()
        cluster = Cluster(folder / "data")
        try:
            cluster.start_api()
            cluster.start_worker(queues="features", concurrency=2)
            with httpx.Client(base_url=cluster.url, timeout=60) as http:
                uploads = [http.post("/v1/uploads", content=data).json()["id"] for data in images]
                end_to_end(http, uploads[:8], 8)  # warm the worker's model
                for size in SIZES:
                    rows.append(("worker", size, *end_to_end(http, uploads, size)))
                search = search_figures(cluster, http, args.vectors)
        finally:
            cluster.stop()
    print(f"feature.extract, {args.images} images (320 px and 384 px PNGs)")
    print(f"{'path':<8} {'batch':>5} {'images/s':>9} {'p50 per call/task':>18}")
    for path, size, rate, p50 in rows:
        print(f"{path:<8} {size:>5} {rate:>9.1f} {p50 * 1000:>15.0f} ms")
    print(f"search, {args.vectors} vectors x 1280 (IndexIDMap2(IndexFlatIP), k=10)")
    print(f"  FAISS alone p50 {search['faiss_p50_s'] * 1000:.1f} ms")
    print(
        f"  HTTP (embed + search) p50 {search['http_p50_s'] * 1000:.0f} ms,"
        f" max {search['http_max_s'] * 1000:.0f} ms,"
        f" first (loads model and index) {search['first_http_s'] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
