"""``image.compose``: a product or garment photo cut out and placed on a background (seed
000, WaveClothes' basic and advanced composition).

The foreground (an upload, a path or inline base64) is cut out of its plain backdrop with
OpenCV GrabCut, seeded from the border colour (an alpha channel it already has is used as
it is), and its edge is feathered. The background is painted from a prompt by the procedural
engine, taken from a second upload, or a plain colour. The layout scales, rotates and places
the cut-out, adds a drop shadow and a caption. Results: the PNG and the cut-out mask.

    models.py    payload and result (no OpenCV; the API validates with them)
    cutout.py    GrabCut seeding, specks, feathering
    layout.py    fit, rotate, position, shadow, caption (Pillow)
    pipeline.py  one composition, stage by stage
"""

from __future__ import annotations

from typing import Any

from genqueue.handlers.compose.models import ComposePayload, ComposeResult
from genqueue.kinds import TaskContext, kind
from genqueue.result_cache import reads_paths
from genqueue.retry import RetryPolicy


def _cacheable(payload: dict[str, Any]) -> bool:
    """GrabCut runs from a fixed RNG seed and a prompt's background from its seed (or one
    derived from the prompt): the same inputs compose the same picture, unless one is read by
    path (the file may change)."""
    return not reads_paths(payload["foreground"], payload["background"].get("image"))


@kind(
    "image.compose",
    payload=ComposePayload,
    result=ComposeResult,
    queue="image",
    timeout_s=120.0,
    retry=RetryPolicy(max_attempts=2, base_delay_s=1.0, max_delay_s=10.0),
    executor="process",
    deterministic=_cacheable,
)
def compose(payload: ComposePayload, ctx: TaskContext) -> ComposeResult:
    """Cut a product photo out of its backdrop and compose it on a background."""
    from genqueue.handlers.compose.pipeline import run_compose

    return run_compose(payload, ctx)


KINDS = [compose]
