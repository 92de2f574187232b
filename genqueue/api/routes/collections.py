"""``/v1/collections``: FAISS collections of image vectors, filled by ``feature.extract``.

Ingest goes through the Dispatcher like any batch (stored, then published; every queue
guarantee holds), and the batch's progress is the index build's progress. Search runs here, in
the API process: the query image is embedded by the process's own ONNX session and looked up in
its in-memory index (``genqueue.vectors``). Bodies are parsed by hand rather than by FastAPI so
that a path outside the input root is a 403, as it is for tasks, not a 422.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from genqueue.api.auth import OperatorDep
from genqueue.api.deps import RuntimeDep
from genqueue.api.errors import error_responses
from genqueue.api.openapi import json_body
from genqueue.api.runtime import Runtime
from genqueue.api.schemas import WireInt
from genqueue.dispatch import TaskRequest
from genqueue.errors import (
    BackendUnavailableError,
    ConfigError,
    FieldProblem,
    ForbiddenPathError,
    InvalidInputError,
)
from genqueue.handlers.features.models import (
    COLLECTION_NAME,
    ITEM_ID,
    Metadata,
    check_collection,
)
from genqueue.inputs import FORBIDDEN_PATH, InputFile, InputReader
from genqueue.vectors import CollectionIndex, Collections

M = TypeVar("M", bound=BaseModel)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's own lifespan, once the runtime (store, event hub) is open."""
    runtime: Runtime = app.state.runtime
    service = Collections(runtime.settings, runtime.store, runtime.hub)
    await service.start()
    app.state.collections = service
    try:
        yield
    finally:
        await service.aclose()


router = APIRouter(prefix="/v1", tags=["collections"], lifespan=lifespan)


def get_collections(request: Request) -> Collections:
    service: Collections = request.app.state.collections
    return service


CollectionsDep = Annotated[Collections, Depends(get_collections)]
# Bodies are documented by json_body(model) on each route: FastAPI only sees a dict here.
JsonBody = Annotated[dict[str, Any], Body(include_in_schema=False)]
# checked_name's rule, for the document only (checked_name gives the clearer 422).
CollectionName = Annotated[str, PathParam(json_schema_extra={"pattern": COLLECTION_NAME.pattern})]


class CollectionCreate(BaseModel):
    name: str = Field(
        min_length=1, max_length=64, json_schema_extra={"pattern": COLLECTION_NAME.pattern}
    )


class IngestItem(BaseModel):
    image: InputFile
    id: str | None = Field(None, pattern=ITEM_ID)


class IngestRequest(BaseModel):
    model_config = ConfigDict(
        # Exactly one of items, folder (ingest() checks it; this tells the document).
        json_schema_extra={
            "oneOf": [
                {"required": ["items"], "properties": {"items": {"type": "array"}}},
                {"required": ["folder"], "properties": {"folder": {"type": "string"}}},
            ]
        }
    )

    items: list[IngestItem] | None = Field(None, min_length=1)
    folder: str | None = Field(None, min_length=1, max_length=1024)
    metadata: Metadata = Field(default_factory=dict)
    images_per_task: WireInt | None = Field(None, ge=1, le=256)
    user: str | None = Field(None, max_length=200)
    priority: WireInt = Field(0, ge=-1000, le=1000)  # the Dispatcher's range


class SearchRequest(BaseModel):
    image: InputFile
    k: WireInt = Field(10, ge=1, le=1000)
    threshold: float | None = Field(None, ge=-1.0, le=1.0)


def parse(model: type[M], data: dict[str, Any]) -> M:
    """Validate a body, naming each bad field; a forbidden path is a 403."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            if err["type"] == FORBIDDEN_PATH:
                raise ForbiddenPathError(".".join(map(str, err["loc"])), err["msg"]) from None
        problems = [
            FieldProblem(".".join(map(str, e["loc"])) or "body", e["msg"]) for e in exc.errors()
        ]
        raise InvalidInputError(problems) from None


def checked_name(name: str) -> str:
    try:
        return check_collection(name)
    except ValueError as exc:
        raise InvalidInputError([FieldProblem("name", str(exc))]) from None


def describe(service: Collections, name: str) -> dict[str, Any]:
    info = service.info(name)
    loaded = service.loaded(name)
    return {
        "name": info.name,
        "dim": info.dim,
        "model": info.model,
        "index_type": CollectionIndex.index_type,
        "metric": "cosine",
        "size": loaded.size if loaded is not None else None,
        "created_at": info.created_at.isoformat(),
    }


@router.get("/collections", responses=error_responses(503))
async def list_collections(service: CollectionsDep) -> list[dict[str, Any]]:
    """Every collection with its size (loading each index this process has not loaded yet)."""
    out = []
    for name in await asyncio.to_thread(service.names):
        await service.index(name)
        out.append(describe(service, name))
    return out


@router.post(
    "/collections",
    status_code=201,
    responses={200: {"description": "the name was taken: the existing collection"}},
    openapi_extra=json_body(CollectionCreate),
)
async def create_collection(
    body: JsonBody, service: CollectionsDep, operator: OperatorDep
) -> JSONResponse:
    """Create a collection; 200 with the existing one if the name is taken."""
    name = checked_name(parse(CollectionCreate, body).name)
    _, created = await asyncio.to_thread(service.create, name)
    await service.index(name)
    return JSONResponse(describe(service, name), status_code=201 if created else 200)


@router.get("/collections/{name}", responses=error_responses(404, 503))
async def get_collection(name: CollectionName, service: CollectionsDep) -> dict[str, Any]:
    await service.index(checked_name(name))
    return describe(service, name)


@router.delete("/collections/{name}", responses=error_responses(404, 503))
async def delete_collection(
    name: CollectionName, service: CollectionsDep, operator: OperatorDep
) -> dict[str, Any]:
    """Forget the collection and its index files (the tasks that fed it stay in the store)."""
    await asyncio.to_thread(service.delete, checked_name(name))
    return {"name": name, "deleted": True}


def folder_images(runtime: Runtime, folder: str, limit: int) -> list[InputFile]:
    """The image files under ``folder`` (relative to the input root), sorted, at most
    ``limit``; a path leading outside the root is refused before anything is listed."""
    parse(InputFile, {"path": folder})  # relative, no "..": else 403
    root = runtime.settings.input_root
    if root is None:
        raise ForbiddenPathError("folder", "no input root is configured (GENQUEUE_INPUT_ROOT)")
    base = root.resolve()
    target = (base / folder).resolve()
    if not target.is_relative_to(base):
        raise ForbiddenPathError("folder", f"{folder!r} leads outside the input root")
    if not target.is_dir():
        raise InvalidInputError([FieldProblem("folder", f"no folder {folder!r}")])
    found: list[InputFile] = []
    for path in sorted(target.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            if not path.resolve().is_relative_to(base):
                continue  # a symlink out of the root is never followed
            if len(found) == limit:
                raise InvalidInputError(
                    [FieldProblem("folder", f"more than {limit} images: ingest it in parts")]
                )
            found.append(InputFile(path=Path(path).relative_to(base).as_posix()))
    if not found:
        raise InvalidInputError([FieldProblem("folder", f"no image files in {folder!r}")])
    return found


@router.post(
    "/collections/{name}/items",
    status_code=202,
    responses=error_responses(403, 404, 503),
    openapi_extra=json_body(IngestRequest),
)
async def ingest(
    name: CollectionName,
    body: JsonBody,
    runtime: RuntimeDep,
    service: CollectionsDep,
    operator: OperatorDep,
) -> dict[str, Any]:
    """Embed and index images as a batch of ``feature.extract`` tasks; follow the batch."""
    await asyncio.to_thread(service.info, checked_name(name))
    request = parse(IngestRequest, body)
    settings = runtime.settings.features
    if (request.items is None) == (request.folder is None):
        raise InvalidInputError([FieldProblem("items", "give exactly one of items, folder")])
    if request.items is not None:
        sources = [i.image for i in request.items]
        # An item's id: given, else its upload id or path, else a fresh one (inline bytes).
        ids = [i.id or i.image.upload or i.image.path or uuid.uuid4().hex for i in request.items]
        if len(sources) > settings.ingest_max_items:
            raise InvalidInputError(
                [FieldProblem("items", f"at most {settings.ingest_max_items} items")]
            )
    else:
        assert request.folder is not None
        sources = await asyncio.to_thread(
            folder_images, runtime, request.folder, settings.ingest_max_items
        )
        ids = [s.path or "" for s in sources]
    per_task = request.images_per_task or settings.ingest_images_per_task
    per_task = min(per_task, settings.max_batch)
    requests = [
        TaskRequest(
            kind="feature.extract",
            payload={
                "images": [s.model_dump(exclude_none=True) for s in sources[i : i + per_task]],
                "ids": ids[i : i + per_task],
                "collection": name,
                "metadata": request.metadata,
            },
            user=request.user,
            priority=request.priority,
        )
        for i in range(0, len(sources), per_task)
    ]
    if len(requests) > runtime.settings.max_batch:
        message = f"{len(requests)} tasks is over GENQUEUE_MAX_BATCH: raise images_per_task"
        raise InvalidInputError([FieldProblem("items", message)])
    batch, _ = await runtime.dispatcher.submit_batch(requests, request.user)
    return {
        "collection": name,
        "batch_id": batch.id,
        "tasks": len(requests),
        "items": len(sources),
        "links": {"batch": f"/v1/batches/{batch.id}", "events": f"/v1/events?batch_id={batch.id}"},
    }


def embed_query(runtime: Runtime, source: InputFile) -> Any:
    from genqueue.ml.effnet import load_embedder

    settings = runtime.settings
    root = str(settings.input_root) if settings.input_root is not None else None
    reader = InputReader(settings.artifacts, root, settings.max_image_pixels)
    try:
        image = reader.image(source, "image")
    except ForbiddenPathError as exc:
        raise ForbiddenPathError("image.path", str(exc)) from None
    except InvalidInputError as exc:
        fields = [
            p if p.field == "image" else FieldProblem(f"image.{p.field}", p.message)
            for p in exc.problems
        ]
        raise InvalidInputError(fields) from None
    try:
        embedder = load_embedder(settings.features.model_path, settings.features.intra_op_threads)
    except ConfigError as exc:  # no model file: the operator must run `make models`
        raise BackendUnavailableError(str(exc)) from None
    vectors, _ = embedder.embed([image])
    return vectors[0]


@router.post(
    "/collections/{name}/search",
    responses=error_responses(403, 404, 503),
    openapi_extra=json_body(SearchRequest),
)
async def search(
    name: CollectionName, body: JsonBody, runtime: RuntimeDep, service: CollectionsDep
) -> dict[str, Any]:
    """The ``k`` items most like the image, by cosine similarity, best first."""
    started = time.perf_counter()
    await service.index(checked_name(name))
    request = parse(SearchRequest, body)
    vector = await asyncio.to_thread(embed_query, runtime, request.image)
    embedded = time.perf_counter()
    hits = await service.search(name, vector, request.k, request.threshold)
    return {
        "collection": name,
        "results": [
            {"id": h.id, "score": round(h.score, 6), "task_id": h.task_id, "metadata": h.metadata}
            for h in hits
        ],
        "embed_s": round(embedded - started, 4),
        "search_s": round(time.perf_counter() - embedded, 4),
    }
