"""One ``feature.extract`` run: read and decode every image, then embed them in chunks."""

from __future__ import annotations

import time
from typing import Any

from genqueue.handlers.features.models import (
    FeatureItem,
    FeaturePayload,
    FeatureResult,
    LabelScore,
    encode_vector,
)
from genqueue.kinds import TaskContext
from genqueue.ml.effnet import DIM, load_embedder
from genqueue.settings import FeatureSettings


def run_extract(
    payload: FeaturePayload, ctx: TaskContext, settings: FeatureSettings
) -> FeatureResult:
    """Decode all images first, so a bad one fails the task before any compute is spent."""
    started = time.perf_counter()
    embedder = load_embedder(settings.model_path, settings.intra_op_threads)
    sources = payload.sources()
    field = "image" if payload.image is not None else "images"
    images: list[Any] = []
    for i, source in enumerate(sources):
        where = field if payload.image is not None else f"{field}.{i}"
        images.append(ctx.inputs.image(source, where))
    ids = payload.item_ids(ctx.task_id)
    items: list[FeatureItem] = []
    chunk = settings.max_batch
    for start in range(0, len(images), chunk):
        vectors, probs = embedder.embed(images[start : start + chunk], chunk)
        for offset in range(len(vectors)):
            labels = embedder.top_labels(probs[offset], payload.top_k_labels)
            items.append(
                FeatureItem(
                    id=ids[start + offset],
                    embedding=encode_vector(vectors[offset]),
                    labels=[LabelScore(index=x.index, name=x.name, score=x.score) for x in labels],
                    metadata=payload.metadata,
                )
            )
        ctx.progress(len(items) / len(images), f"{len(items)}/{len(images)} images")
    return FeatureResult(
        model=embedder.name,
        dim=DIM,
        collection=payload.collection,
        items=items,
        elapsed_s=round(time.perf_counter() - started, 4),
    )
