"""Opening a model for inference on this machine's CPU, the same way for every model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from genqueue.errors import ConfigError


def default_threads() -> int:
    """Threads for one model's operators: the cores, up to 4 (more buys nothing on CPU)."""
    return max(1, min(os.cpu_count() or 1, 4))


def onnx_session(path: Path, threads: int, what: str, remedy: str) -> Any:
    """An ONNX Runtime CPU session of the graph at ``path``. A missing file is a ConfigError
    naming ``what`` it is and the ``remedy`` (which ``make`` target writes it)."""
    if not path.is_file():
        raise ConfigError(f"{what} not found at {path}: {remedy}")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
