"""The classifier-guided engine of ``image.generate`` (``engine: "guided"``).

Honest name: *classifier-guided synthesis (EfficientNet-Lite0 + MiniLM)*. It is not a
diffusion model and does not draw what a text-to-image model would. The prompt is matched to
ImageNet classes by MiniLM sentence embeddings; the prompt's procedural render is the start
image; gradient ascent on EfficientNet-Lite0's scores for the matched classes then paints
their textures and parts into it, DeepDream-like. Deterministic for a seed (no seed: a stable
hash of the prompt), a few seconds per image on two CPU cores.

The models (``genqueue/ml/guided_*.py``) are the resource ``guided_models``, set up once per
pool process for the first guided render and kept by the warm pool; a procedural render never
loads them. Torch, ONNX Runtime and the tokenizer are imported only then, never by the API.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from genqueue.handlers.render_kit import Style
from genqueue.resources import resource
from genqueue.settings import Settings

if TYPE_CHECKING:
    from genqueue.ml.guided_text import ClassMatcher

GENERATOR = "classifier-guided synthesis (EfficientNet-Lite0 + MiniLM)"
TOP_CLASSES = 3
# Progress: matching (with model loads on a cold process) and the start render come first.
MATCHED, STARTED = 0.08, 0.12

OnProgress = Callable[[float, str], None]
OnPreview = Callable[[Any], None]


@dataclass(frozen=True)
class Matched:
    """An ImageNet class the prompt was matched to, and its share of the objective."""

    index: int
    name: str
    similarity: float
    weight: float


@dataclass(frozen=True)
class GuidedRender:
    image: Image.Image
    classes: list[Matched]
    seed: int


@dataclass(frozen=True)
class GuidedModels:
    """What the engine loads (seconds): EfficientNet-Lite0 under torch, and MiniLM with the
    class-name embeddings."""

    classifier: Any
    classes: ClassMatcher


@resource("guided-models")
def guided_models(settings: Settings) -> Iterator[GuidedModels]:
    from genqueue.ml.guided_net import load_classifier
    from genqueue.ml.guided_text import ClassMatcher

    yield GuidedModels(load_classifier(), ClassMatcher())


def stable_seed(prompt: str) -> int:
    """The seed used when none is given: the same for the same prompt in every process."""
    return int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")


def render_guided(
    models: GuidedModels,
    prompt: str,
    width: int,
    height: int,
    style: Style = "default",
    seed: int | None = None,
    steps: int = 20,
    on_progress: OnProgress | None = None,
    on_preview: OnPreview | None = None,
) -> GuidedRender:
    """Draw ``prompt`` at exactly ``width`` x ``height``: one gradient step per ``step``.
    ``on_progress(fraction, message)`` may raise (a cancellation) to abandon the run;
    ``on_preview(picture)`` gets the start image, then the picture every few steps."""
    from genqueue.handlers.render import render_image
    from genqueue.ml.guided_synth import synthesise

    def report(fraction: float, message: str) -> None:
        if on_progress is not None:
            on_progress(fraction, message)

    used_seed = stable_seed(prompt) if seed is None else seed
    report(0.01, "matching the prompt to ImageNet classes")
    matches = models.classes.match(prompt, top=TOP_CLASSES)
    classes = [
        Matched(m.index, m.name, round(m.similarity, 4), round(m.weight, 4)) for m in matches
    ]
    report(MATCHED, "matched: " + ", ".join(c.name for c in classes))
    # The start picture: the procedural render of the same prompt, style and seed.
    start = render_image(prompt, width, height, style=style, seed=used_seed, steps=min(steps, 8))
    report(STARTED, "start image rendered")
    if on_preview is not None:
        on_preview(start)

    def on_step(step: int, total: int) -> None:
        report(STARTED + (0.95 - STARTED) * step / total, f"step {step}/{total}")

    targets = [(m.index, m.weight) for m in matches]
    pixels = synthesise(
        models.classifier,
        np.asarray(start),
        targets,
        steps,
        used_seed,
        on_step,
        on_preview=on_preview,
    )
    return GuidedRender(Image.fromarray(pixels), classes, used_seed)
