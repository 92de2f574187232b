"""Collections in one API process (``genqueue.vectors``): an index built from the store's
succeeded ``feature.extract`` results, kept current from events, saved atomically and rebuilt
from the store when its files are gone. Real SQLite store, real model, real FAISS."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genqueue.artifacts import ArtifactStore
from genqueue.backends import open_store
from genqueue.contracts import Claim, Store, Succeeded
from genqueue.events import EventHub
from genqueue.handlers.features.extract import run_extract
from genqueue.handlers.features.models import FeaturePayload
from genqueue.inputs import InputReader
from genqueue.ml.effnet import load_embedder
from genqueue.models import NewTask
from genqueue.settings import FeatureSettings, Settings, load_settings
from genqueue.vectors import CollectionIndex, CollectionNotFoundError, Collections
from genqueue.vectors.index import MANIFEST
from genqueue.worker.execution import LocalContext
from tests import feature_images as pics
from tests.helpers import wait_for

Vector = np.ndarray[Any, np.dtype[np.float32]]


@pytest.fixture(scope="module")
def images() -> list[Any]:
    return pics.gallery(5)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path, features=FeatureSettings(save_interval_s=3600))


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    store = await open_store(settings.store, settings)
    yield store
    await store.aclose()


class Processes:
    """API processes' collections, opened and closed like a restart; closed at teardown."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self.open: list[tuple[Collections, EventHub]] = []

    async def start(self) -> Collections:
        hub = EventHub(self.store)
        await hub.start()
        service = Collections(self.settings, self.store, hub)
        await service.start()
        self.open.append((service, hub))
        return service

    async def stop(self) -> None:
        """Shut the latest one down (it saves what changed on the way out)."""
        service, hub = self.open.pop()
        await service.aclose()
        await hub.aclose()


@pytest.fixture
async def api(settings: Settings, store: Store) -> AsyncIterator[Processes]:
    processes = Processes(settings, store)
    yield processes
    while processes.open:
        await processes.stop()


async def extracted(store: Store, tmp_path: Path, payload: dict[str, Any]) -> str:
    """A ``feature.extract`` task run to success the way a worker records it."""
    task_id = uuid.uuid4().hex
    model = FeaturePayload.model_validate(payload)
    root = str(tmp_path / "artifacts")
    ctx = LocalContext(task_id, 1, ArtifactStore(root), InputReader(root, None, 10**8))
    result = run_extract(model, ctx, FeatureSettings(), load_embedder())
    new = NewTask(
        id=task_id, kind="feature.extract", queue="features", payload=model.model_dump(mode="json")
    )
    await store.submit([new])
    claim = await store.claim(task_id, "w-test", 30.0)
    assert isinstance(claim, Claim)
    await store.finish(claim.lease, Succeeded(result.model_dump(mode="json")))
    return task_id


def inline(image: Any) -> dict[str, str]:
    return {"base64": base64.b64encode(pics.encode(image, "PNG")).decode()}


async def ingest(store: Store, tmp_path: Path, name: str, images: list[Any]) -> None:
    ids = ["astronaut", *(f"scene-{i}" for i in range(len(images) - 1))]
    for start in range(0, len(images), 3):
        chunk = slice(start, start + 3)
        payload = {"images": [inline(i) for i in images[chunk]], "ids": ids[chunk]}
        await extracted(store, tmp_path, {**payload, "collection": name})


def query(image: Any) -> Vector:
    vectors, _ = load_embedder().embed([image])
    return np.asarray(vectors[0], dtype=np.float32)


async def test_an_index_is_built_from_the_store_and_finds_an_edited_copy(
    settings: Settings,
    store: Store,
    api: Processes,
    tmp_path: Path,
    images: list[Any],
) -> None:
    service = await api.start()
    service.create("photos")
    await ingest(store, tmp_path, "photos", images)
    await extracted(store, tmp_path, {"image": inline(images[1]), "collection": "other"})
    assert (await service.index("photos")).size == 5
    hits = await service.search("photos", query(pics.edited(images[0])), 3, None)
    assert hits[0].id == "astronaut" and hits[0].score > 0.8
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    [exact] = await service.search("photos", query(images[0]), 5, 0.99)
    assert (exact.id, exact.task_id) == ("astronaut", hits[0].task_id) and exact.score > 0.999


async def test_new_results_are_followed_from_events_and_replace_an_item(
    settings: Settings,
    store: Store,
    api: Processes,
    tmp_path: Path,
    images: list[Any],
) -> None:
    service = await api.start()
    service.create("photos")
    index = await service.index("photos")
    await extracted(
        store, tmp_path, {"image": inline(images[2]), "id": "x", "collection": "photos"}
    )
    await wait_for(lambda: _size(index, 1), message="the event to reach the index")
    await extracted(
        store, tmp_path, {"image": inline(images[3]), "id": "x", "collection": "photos"}
    )
    await wait_for(lambda: _applied(index, 2), message="the second event")
    assert index.size == 1  # the same item id again replaces the vector
    [hit] = await service.search("photos", query(images[3]), 5, None)
    assert hit.id == "x" and hit.score > 0.99


async def _size(index: CollectionIndex, n: int) -> bool:
    return index.size == n


async def _applied(index: CollectionIndex, n: int) -> bool:
    return len(index.applied) == n


async def test_a_saved_index_is_loaded_then_caught_up_and_rebuilt_once_its_files_are_gone(
    settings: Settings,
    store: Store,
    api: Processes,
    tmp_path: Path,
    images: list[Any],
) -> None:
    service = await api.start()
    service.create("photos")
    await ingest(store, tmp_path, "photos", images[:3])
    before = await service.search("photos", query(pics.edited(images[0])), 10, None)
    await api.stop()  # saves on the way out
    folder = settings.data_dir / "collections" / "photos"
    info = service.info("photos")
    assert (folder / MANIFEST).is_file()
    saved = CollectionIndex.load(folder, info.generation)
    assert saved is not None and saved.size == 3

    # Written while no API process was up: the files are stale, the store knows better.
    await extracted(store, tmp_path, {"image": inline(images[4]), "collection": "photos"})
    service = await api.start()
    assert (await service.index("photos")).size == 4
    after = await service.search("photos", query(pics.edited(images[0])), 10, None)
    assert [h for h in after if h.id in {b.id for b in before}] == before
    await api.stop()

    for path in folder.iterdir():
        if path.name != "collection.json":
            path.unlink()
    service = await api.start()
    assert (await service.index("photos")).size == 4
    after = await service.search("photos", query(pics.edited(images[0])), 10, None)
    assert [h for h in after if h.id in {b.id for b in before}] == before


async def test_a_collection_made_again_does_not_inherit_the_old_vectors(
    settings: Settings,
    store: Store,
    api: Processes,
    tmp_path: Path,
    images: list[Any],
) -> None:
    service = await api.start()
    service.create("photos")
    await extracted(store, tmp_path, {"image": inline(images[0]), "collection": "photos"})
    assert (await service.index("photos")).size == 1
    service.delete("photos")
    with pytest.raises(CollectionNotFoundError, match="photos"):
        await service.index("photos")
    _, created = service.create("photos")
    assert created and (await service.index("photos")).size == 0
    assert service.create("photos")[1] is False


async def test_an_unknown_collection_is_named_in_the_error(api: Processes) -> None:
    service = await api.start()
    with pytest.raises(CollectionNotFoundError, match="'nope'"):
        await service.search("nope", np.zeros(1280, np.float32), 3, None)
    assert (await service.index("default")).size == 0  # the default collection always exists
