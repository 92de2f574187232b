"""Kinds for ``bench/batching.py`` (``--kinds bench.batch_kinds``): one synthetic cost model,
40 ms per call + 1 ms per item (a model whose fixed cost batching shares), run batched (up to
32) and unbatched; and ``feature.extract``'s handler without batching, to compare with."""

from __future__ import annotations

import time

from pydantic import BaseModel

from genqueue import TaskContext, kind
from genqueue.handlers.features import embedder
from genqueue.handlers.features.models import FeaturePayload, FeatureResult
from genqueue.kinds import Batching

FIXED_S, PER_ITEM_S = 0.040, 0.001
MAX_SIZE = 32


class Item(BaseModel):
    n: int = 0


def cost(items: int) -> None:
    """What the model costs: a GIL-free wait, as an accelerator's call would be."""
    time.sleep(FIXED_S + PER_ITEM_S * items)


@kind("bench.synthetic", payload=Item, queue="bench", executor="thread")
def synthetic(item: Item, ctx: TaskContext) -> dict[str, int]:
    """One item per call."""
    cost(1)
    return {"n": item.n}


@kind(
    "bench.synthetic-batched",
    payload=Item,
    queue="bench",
    executor="thread",
    batching=Batching(max_size=MAX_SIZE, max_wait_s=0.01),
)
def synthetic_batched(items: list[Item], contexts: list[TaskContext]) -> list[dict[str, int]]:
    """Up to 32 items per call."""
    cost(len(items))
    return [{"n": item.n} for item in items]


@kind(
    "bench.features-unbatched",
    payload=FeaturePayload,
    result=FeatureResult,
    queue="features",
    executor="thread",
    resources=[embedder],
)
def features_unbatched(payload: FeaturePayload, ctx: TaskContext) -> FeatureResult:
    """``feature.extract`` one task per call."""
    from genqueue.handlers.features.extract import run_extract

    return run_extract(payload, ctx, ctx.settings.features, ctx.resource(embedder))
