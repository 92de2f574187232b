"""``feature.extract`` runs: read and decode every image, then embed them in chunks. A batch of
tasks (genqueue/worker/batching.py) shares the chunks: 32 one-image tasks are one ONNX run."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from genqueue.handlers.features.models import (
    FeatureItem,
    FeaturePayload,
    FeatureResult,
    LabelScore,
    encode_vector,
)
from genqueue.kinds import TaskContext, alone
from genqueue.ml.effnet import DIM, Embedder
from genqueue.settings import FeatureSettings


@dataclass
class _Run:
    """One task of a batch: its decoded images and where they sit in the shared chunks."""

    payload: FeaturePayload
    ctx: TaskContext
    images: list[Any]
    first: int = 0  # index of its first image in the batch


def run_extract(
    payload: FeaturePayload, ctx: TaskContext, settings: FeatureSettings, embedder: Embedder
) -> FeatureResult:
    """One task on its own (tests, benches): the batch of one."""
    return alone(run_extract_batch([payload], [ctx], settings, embedder))


def run_extract_batch(
    payloads: list[FeaturePayload],
    contexts: list[TaskContext],
    settings: FeatureSettings,
    embedder: Embedder,
) -> list[FeatureResult | Exception]:
    """Decode every task's images first, so a bad one fails its own task before any compute
    is spent (and only that task); then embed the images of all the others together, in
    chunks of ``max_batch``. A task cancelled meanwhile is left out of the compute."""
    started = time.perf_counter()
    outcomes: list[FeatureResult | Exception | None] = [None] * len(payloads)
    runs: dict[int, _Run] = {}
    for t, (payload, ctx) in enumerate(zip(payloads, contexts, strict=True)):
        try:
            runs[t] = _Run(payload, ctx, _decode(payload, ctx))
        except Exception as exc:
            outcomes[t] = exc
    images: list[Any] = []
    for run in runs.values():
        run.first = len(images)
        images.extend(run.images)
    vector_parts, prob_parts = [], []
    for start in range(0, len(images), settings.max_batch):
        runs = {t: r for t, r in runs.items() if not r.ctx.cancelled}  # theirs are dropped
        vectors, probs = embedder.embed(
            images[start : start + settings.max_batch], settings.max_batch
        )
        vector_parts.append(vectors)
        prob_parts.append(probs)
        done = start + len(vectors)
        for run in runs.values():
            if run.first < done and run.images:
                finished = min(len(run.images), done - run.first)
                _report(run.ctx, finished / len(run.images), f"{finished}/{len(run.images)} images")
    all_vectors = np.concatenate(vector_parts) if vector_parts else np.zeros((0, DIM))
    all_probs = np.concatenate(prob_parts) if prob_parts else np.zeros((0, 1000))
    elapsed = round(time.perf_counter() - started, 4)
    for t, run in runs.items():
        ids = run.payload.item_ids(run.ctx.task_id)
        items = []
        for offset in range(len(run.images)):
            at = run.first + offset
            labels = embedder.top_labels(all_probs[at], run.payload.top_k_labels)
            items.append(
                FeatureItem(
                    id=ids[offset],
                    embedding=encode_vector(all_vectors[at]),
                    labels=[LabelScore(index=x.index, name=x.name, score=x.score) for x in labels],
                    metadata=run.payload.metadata,
                )
            )
        outcomes[t] = FeatureResult(
            model=embedder.name,
            dim=DIM,
            collection=run.payload.collection,
            items=items,
            elapsed_s=elapsed,
        )
    # A task left out (cancelled) has no outcome; the worker has given it one already.
    return [o if o is not None else RuntimeError("cancelled") for o in outcomes]


def _report(ctx: TaskContext, fraction: float, message: str) -> None:
    """Progress of one task of a batch; a task cancelled meanwhile must not stop the rest."""
    # Its cancellation (TaskCancelledError) is raised here: the worker drops its result.
    with contextlib.suppress(Exception):
        ctx.progress(fraction, message)


def _decode(payload: FeaturePayload, ctx: TaskContext) -> list[Any]:
    field = "image" if payload.image is not None else "images"
    images = []
    for i, source in enumerate(payload.sources()):
        where = field if payload.image is not None else f"{field}.{i}"
        images.append(ctx.inputs.image(source, where))
    return images
