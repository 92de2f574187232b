"""Collections: what one API process knows of every collection, and how it stays current.

A collection exists while its definition ``<index_dir>/<name>/collection.json`` does (name,
dimension, model, creation time, a generation id). It is checked on every use, so a collection
deleted through another API process sharing the folder disappears here too.

Its index is loaded on first use: from the saved files when they belong to this generation,
otherwise rebuilt from the store's succeeded ``feature.extract`` results for the collection
(created after it was); then, either way, the store is scanned for results the files miss
(written after the last save, or while this process was down). From then on the process
follows ``task.succeeded`` events through the event hub. Tasks are recorded per index by id,
so seeing one twice (scan and event) adds it once. Indexes that changed are saved every
``save_interval_s`` and on shutdown. Limit: the store forgets tasks after the retention
period, so vectors older than that live only in the saved files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genqueue.contracts import Store
from genqueue.errors import TaskNotFoundError
from genqueue.events import EventHub
from genqueue.handlers.features.models import ENCODING, check_collection, decode_vector
from genqueue.ml.effnet import DIM
from genqueue.ml.export_effnet import MODEL_NAME
from genqueue.models import Event, EventType, Task, TaskFilter, TaskStatus
from genqueue.settings import Settings
from genqueue.vectors.index import CollectionIndex, Hit, Item

log = logging.getLogger(__name__)

KIND = "feature.extract"
DEFINITION = "collection.json"
SCAN_PAGE = 200


class CollectionNotFoundError(TaskNotFoundError):
    """No collection by that name (HTTP 404, like an unknown task)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no collection {name!r}: create it with POST /v1/collections")


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    dim: int
    model: str
    created_at: datetime
    generation: str


def items_of(task: Task) -> tuple[str | None, list[Item]]:
    """The collection a finished ``feature.extract`` task names, and its vectors."""
    result = task.result or {}
    if result.get("encoding") != ENCODING:
        return None, []
    items = [
        Item(str(i["id"]), decode_vector(i["embedding"]), dict(i.get("metadata") or {}))
        for i in result.get("items", [])
    ]
    return result.get("collection"), [i for i in items if i.vector.shape == (DIM,)]


class Collections:
    """The collections of one API process; see the module docstring for the lifecycle."""

    def __init__(self, settings: Settings, store: Store, hub: EventHub) -> None:
        self.settings = settings.features
        self.root = self.settings.index_dir or settings.data_dir / "collections"
        self._store = store
        self._hub = hub
        self._indexes: dict[str, CollectionIndex] = {}
        self._loading: dict[str, list[Task]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._finished: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._hub.listeners.append(self._on_event)
        self._tasks = [
            asyncio.create_task(self._follow(), name="genqueue-collections-follow"),
            asyncio.create_task(self._save_loop(), name="genqueue-collections-save"),
        ]

    async def aclose(self) -> None:
        with contextlib.suppress(ValueError):
            self._hub.listeners.remove(self._on_event)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.save_dirty()

    # -- definitions -----------------------------------------------------------------------

    def _folder(self, name: str) -> Path:
        return self.root / check_collection(name)

    def info(self, name: str) -> CollectionInfo:
        try:
            raw = json.loads((self._folder(name) / DEFINITION).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            if name == self.settings.default_collection:
                return self.create(name)[0]
            raise CollectionNotFoundError(name) from None
        return CollectionInfo(
            raw["name"],
            raw["dim"],
            raw["model"],
            datetime.fromisoformat(raw["created_at"]),
            raw["generation"],
        )

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob(f"*/{DEFINITION}"))

    def create(self, name: str) -> tuple[CollectionInfo, bool]:
        """Make a collection; an existing one is returned as it is (``created=False``)."""
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        info = CollectionInfo(name, DIM, MODEL_NAME, datetime.now(UTC), uuid.uuid4().hex)
        body = {**asdict(info), "created_at": info.created_at.isoformat()}
        tmp = folder / f".{DEFINITION}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(json.dumps(body), encoding="utf-8")
        try:
            # link() fails if the definition exists: two creators race, one wins.
            (folder / DEFINITION).hardlink_to(tmp)
        except FileExistsError:
            return self.info(name), False
        finally:
            tmp.unlink(missing_ok=True)
        return info, True

    def delete(self, name: str) -> None:
        self.info(name)
        self._indexes.pop(name, None)
        shutil.rmtree(self._folder(name), ignore_errors=True)

    # -- indexes ---------------------------------------------------------------------------

    async def index(self, name: str) -> CollectionIndex:
        """The collection's index, loaded or rebuilt on first use (404 if no definition)."""
        info = await asyncio.to_thread(self.info, name)
        current = self._indexes.get(name)
        if current is not None and current.generation == info.generation:
            return current
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            current = self._indexes.get(name)
            if current is not None and current.generation == info.generation:
                return current
            self._loading[name] = []
            try:
                folder = self._folder(name)
                index = await asyncio.to_thread(CollectionIndex.load, folder, info.generation)
                if index is None:
                    index = CollectionIndex(info.dim, info.generation)
                await self._catch_up(name, info, index)
                for task in self._loading[name]:
                    self._apply(index, task, info)
                self._indexes[name] = index
            finally:
                self._loading.pop(name, None)
            return index

    async def _catch_up(self, name: str, info: CollectionInfo, index: CollectionIndex) -> None:
        """Apply the store's succeeded results for ``name`` that the index lacks, oldest
        first, so a later re-ingest of an item id wins."""
        where = TaskFilter(kind=KIND, status=TaskStatus.SUCCEEDED)
        found: list[Task] = []
        cursor: str | None = None
        while True:
            page = await self._store.list_tasks(where, SCAN_PAGE, cursor)
            found += [
                t
                for t in page.tasks
                if t.id not in index.applied and t.payload.get("collection") == name
            ]
            cursor = page.next_cursor
            if cursor is None:
                break
        for task in reversed(found):
            self._apply(index, task, info)

    def _apply(self, index: CollectionIndex, task: Task, info: CollectionInfo) -> None:
        if task.created_at < info.created_at:
            return  # made for an earlier collection of the same name
        _, items = items_of(task)
        index.add(task.id, items)

    def _on_event(self, event: Event) -> None:
        if event.type == EventType.SUCCEEDED and event.kind == KIND:
            self._finished.put_nowait(event.task_id)

    async def _follow(self) -> None:
        while True:
            task_id = await self._finished.get()
            try:
                task = await self._store.get(task_id)
                name = task.payload.get("collection")
                if not isinstance(name, str):
                    continue
                if name in self._loading:
                    self._loading[name].append(task)
                elif name in self._indexes:
                    info = await asyncio.to_thread(self.info, name)
                    self._apply(self._indexes[name], task, info)
            except CollectionNotFoundError:
                continue
            except Exception:
                log.exception("vectors of task %s not indexed", task_id)

    async def _save_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.save_interval_s)
            try:
                await self.save_dirty()
            except Exception:
                log.exception("saving collections failed")

    async def save_dirty(self) -> None:
        for name, index in list(self._indexes.items()):
            if index.dirty and (self._folder(name) / DEFINITION).exists():
                await asyncio.to_thread(index.save, self._folder(name))

    def loaded(self, name: str) -> CollectionIndex | None:
        """The index if this process has it in memory (None: not loaded yet)."""
        return self._indexes.get(name)

    async def search(self, name: str, vector: Any, k: int, threshold: float | None) -> list[Hit]:
        index = await self.index(name)
        return await asyncio.to_thread(index.search, vector, k, threshold)
