"""``image.diagnose``: is this camera frame healthy? (seed 004, EasySight's camera diagnosis)

Blur, exposure, contrast, colour cast, noise, signal loss, occlusion and frozen frames on
OpenCV 4.x, plus faces (BlazeFace on LiteRT) and people (SSDLite on ONNX Runtime), models that
ship in wheels (no download); each check answers with a score, the threshold it was held to
and a verdict, and every alert is also raised as a ``diagnosis.alert`` event. Frames are
diagnosed in batches of up to 16 in a worker thread (OpenCV and both runtimes release the
GIL), each detector once per batch, with the detectors loaded once per worker (resources);
OpenCV and the models are imported in workers only, never by the API.

    models.py    payload and result (no OpenCV)
    checks.py    the picture checks, each documenting its measure and default threshold
    detect.py    BlazeFace faces and SSDLite people, batched
    frozen.py    per-camera fingerprints in the shared artifact store
    annotate.py  the PNG with boxes and a legend of failed checks
    pipeline.py  one diagnosis, stage by stage
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from genqueue.handlers.diagnose.models import DiagnosePayload, DiagnoseResult
from genqueue.kinds import Batching, TaskContext, kind
from genqueue.resources import resource
from genqueue.result_cache import reads_paths
from genqueue.retry import RetryPolicy
from genqueue.settings import Settings

if TYPE_CHECKING:
    from genqueue.handlers.diagnose.detect import FaceDetector, PeopleDetector


@resource("ssdlite-people")
def people_detector(settings: Settings) -> Iterator[PeopleDetector]:
    """The worker's SSDLite person detector (a 12 MB ONNX graph, about 0.3 s to load)."""
    from genqueue.handlers.diagnose.detect import PeopleDetector
    from genqueue.ml.export_ssdlite import default_model_path

    yield PeopleDetector(default_model_path())


@resource("blazeface")
def face_detector(settings: Settings) -> Iterator[FaceDetector]:
    """The worker's BlazeFace detector (LiteRT, a few ms to load)."""
    from genqueue.handlers.diagnose.detect import FaceDetector, face_model_path

    yield FaceDetector(face_model_path())


def _cacheable(payload: dict[str, Any]) -> bool:
    """The checks of one frame depend on its bytes alone, unless it is read by path (the
    file may change) or has a ``camera_id`` (the frozen check compares it with that camera's
    earlier frames)."""
    return payload["camera_id"] is None and not reads_paths(payload["image"])


@kind(
    "image.diagnose",
    payload=DiagnosePayload,
    result=DiagnoseResult,
    queue="diagnosis",
    timeout_s=60.0,
    retry=RetryPolicy(max_attempts=2, base_delay_s=0.5, max_delay_s=5.0),
    executor="thread",
    batching=Batching(max_size=16, max_wait_s=0.02),
    resources=[people_detector, face_detector],
    deterministic=_cacheable,
)
def diagnose(
    payloads: list[DiagnosePayload], contexts: list[TaskContext]
) -> list[DiagnoseResult | Exception]:
    """Diagnose camera frames: picture quality checks, faces and people, frozen feed."""
    from genqueue.handlers.diagnose.pipeline import Detectors, run_diagnosis_batch

    ctx = contexts[0]
    models = Detectors(ctx.resource(people_detector), ctx.resource(face_detector))
    return run_diagnosis_batch(payloads, contexts, ctx.settings.diagnosis, models)


KINDS = [diagnose]
