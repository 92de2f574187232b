"""``feature.extract``: image embeddings for similarity search (seed 002, the feature-extraction
compute server), on EfficientNet-Lite0 exported to ONNX at install time.

    models.py    payload, result and the vector encoding (no onnxruntime)
    extract.py   decode, preprocess and one ONNX run per chunk of images

Executor: a thread, not the process pool. ONNX Runtime releases the GIL while it runs, so a
thread loses nothing; the session (model loaded once, ~0.3 s and ~40 MB) is shared by every
run in the worker (the ``embedder`` resource) instead of being rebuilt in each pool child and
again after every kill.
Cancellation is cooperative: the handler checks between chunks of images. Vectors are indexed
by the API processes that follow ``task.succeeded`` (``genqueue.vectors``), not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from genqueue.handlers.features.models import FeaturePayload, FeatureResult
from genqueue.kinds import Batching, TaskContext, kind
from genqueue.resources import resource
from genqueue.result_cache import reads_paths
from genqueue.retry import RetryPolicy
from genqueue.settings import Settings

if TYPE_CHECKING:
    from genqueue.ml.effnet import Embedder


@resource("effnet")
def embedder(settings: Settings) -> Iterator[Embedder]:
    """The worker's EfficientNet-Lite0 session (~0.3 s and ~40 MB to load), shared by runs."""
    from genqueue.ml.effnet import Embedder, model_path

    features = settings.features
    yield Embedder(model_path(features.model_path), features.intra_op_threads)


def _cacheable(payload: dict[str, Any]) -> bool:
    """The same bytes give the same vectors, unless read by path (the file may change) or
    indexed into a collection (a side effect the cache would skip)."""
    images = [payload["image"], *(payload["images"] or [])]
    return payload["collection"] is None and not reads_paths(*images)


@kind(
    "feature.extract",
    payload=FeaturePayload,
    result=FeatureResult,
    queue="features",
    timeout_s=120.0,
    retry=RetryPolicy(max_attempts=2, base_delay_s=0.5, max_delay_s=5.0),
    executor="thread",
    batching=Batching(max_size=32, max_wait_s=0.02),
    resources=[embedder],
    deterministic=_cacheable,
)
def extract_features(
    payloads: list[FeaturePayload], contexts: list[TaskContext]
) -> list[FeatureResult | Exception]:
    """Embed images (1280-d, L2-normalised) and name their top ImageNet classes."""
    from genqueue.handlers.features.extract import run_extract_batch

    settings = contexts[0].settings.features
    return run_extract_batch(payloads, contexts, settings, contexts[0].resource(embedder))


KINDS = [extract_features]
