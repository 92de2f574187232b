"""``feature.extract``: image embeddings for similarity search (seed 002, the feature-extraction
compute server), on EfficientNet-Lite0 exported to ONNX at install time.

    models.py    payload, result and the vector encoding (no onnxruntime)
    extract.py   decode, preprocess and one ONNX run per chunk of images

Executor: a thread, not the process pool. ONNX Runtime releases the GIL while it runs, so a
thread loses nothing; the session (model loaded once, ~0.3 s and ~40 MB) is shared by every
run in the worker instead of being rebuilt in each pool child and again after every kill.
Cancellation is cooperative: the handler checks between chunks of images. Vectors are indexed
by the API processes that follow ``task.succeeded`` (``genqueue.vectors``), not here.
"""

from __future__ import annotations

from genqueue.handlers.features.models import FeaturePayload, FeatureResult
from genqueue.kinds import Batching, TaskContext, kind
from genqueue.retry import RetryPolicy


@kind(
    "feature.extract",
    payload=FeaturePayload,
    result=FeatureResult,
    queue="features",
    timeout_s=120.0,
    retry=RetryPolicy(max_attempts=2, base_delay_s=0.5, max_delay_s=5.0),
    executor="thread",
    batching=Batching(max_size=32, max_wait_s=0.02),
)
def extract_features(payload: FeaturePayload, ctx: TaskContext) -> FeatureResult:
    """Embed images (1280-d, L2-normalised) and name their top ImageNet classes."""
    from genqueue.handlers.features.extract import run_extract

    return run_extract(payload, ctx, ctx.settings.features)


KINDS = [extract_features]
