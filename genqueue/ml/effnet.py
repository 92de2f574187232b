"""EfficientNet-Lite0 under ONNX Runtime: images in, L2-normalised 1280-d embeddings and
ImageNet labels out. No torch here; the graph comes from :mod:`genqueue.ml.export_effnet`.

One :class:`Embedder` per process (``load_embedder`` caches it by path): the session is built
once, is safe to call from several threads, and runs the whole batch in one ``run``. Runs are
serialised by a lock, because each already uses every core it is given (intra-op threads);
two at once on a 2-core machine would only fight over the cores. Preprocessing, which is
PIL work that releases the GIL, runs outside the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from genqueue.ml.export_effnet import MODEL_NAME, default_model_path
from genqueue.ml.runtime import onnx_session

DIM = 1280
SIZE = 224
SHORT_SIDE = 256

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Label:
    index: int
    name: str
    score: float


def model_path(configured: Path | None) -> Path:
    """The configured model file, or the one ``make models`` writes into the virtualenv."""
    return configured if configured is not None else default_model_path()


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names in index order (from timm's synset and lemma lists)."""
    text = files("genqueue.ml").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    names = text.splitlines()
    assert len(names) == 1000, "genqueue/ml/imagenet_classes.txt must have 1000 lines"
    return names


def preprocess(image: Any) -> Matrix:
    """Short side to 256, centre crop 224, ``(rgb - 127) / 128``, channels first: the
    normalisation the weights were trained with (ImageNet mean/std gives lower confidence)."""
    from PIL import Image

    image = image.convert("RGB")
    scale = SHORT_SIDE / min(image.size)
    width, height = max(SIZE, round(image.width * scale)), max(SIZE, round(image.height * scale))
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    left, top = (width - SIZE) // 2, (height - SIZE) // 2
    crop = np.asarray(image.crop((left, top, left + SIZE, top + SIZE)), dtype=np.float32)
    return ((crop - 127.0) / 128.0).transpose(2, 0, 1)


class Embedder:
    """An ONNX Runtime session of the exported graph, with its labels."""

    name = MODEL_NAME

    def __init__(self, path: Path, threads: int = 0) -> None:
        self._session: Any = onnx_session(
            path,
            threads,
            "feature model",
            "run `make models` (it exports EfficientNet-Lite0 to ONNX)"
            " or set GENQUEUE_FEATURES__MODEL_PATH",
        )
        self._lock = threading.Lock()
        self.classes = imagenet_classes()

    def run(self, batch: Matrix) -> tuple[Matrix, Matrix]:
        """One ONNX run over preprocessed images: (normalised embeddings, softmax scores)."""
        with self._lock:
            embedding, logits = self._session.run(["embedding", "logits"], {"image": batch})
        norms = np.linalg.norm(embedding, axis=1, keepdims=True)
        vectors = (embedding / np.maximum(norms, 1e-12)).astype(np.float32)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
        return vectors, probs

    def embed(self, images: Sequence[Any], chunk: int = 32) -> tuple[Matrix, Matrix]:
        """Embeddings and class scores of PIL images, ``chunk`` images per ONNX run."""
        parts = [
            self.run(np.stack([preprocess(im) for im in images[i : i + chunk]]))
            for i in range(0, len(images), chunk)
        ]
        if not parts:
            return np.zeros((0, DIM), np.float32), np.zeros((0, 1000), np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def top_labels(self, probs: npt.NDArray[np.float32], k: int = 5) -> list[Label]:
        best = np.argsort(-probs)[:k]
        return [Label(int(i), self.classes[int(i)], float(probs[i])) for i in best]


@lru_cache(maxsize=4)
def load_embedder(path: Path | None = None, threads: int = 0) -> Embedder:
    """The process's embedder for ``path`` (built once; an 18.6 MB graph loads in ~0.3 s)."""
    return Embedder(model_path(path), threads)
