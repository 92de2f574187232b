"""Typed results of the built-in kinds, for ``client.run(..., result_type=...)`` and
``client.map(..., result_type=...)``::

    from genqueue.results import ImageResult

    picture = client.run("image.generate", {"prompt": "a red fox"}, result_type=ImageResult)
    print(picture.image_url, picture.width, picture.height)

These are the very models the kinds validate their results with (one definition, so the
client cannot drift from the worker). Importing this module loads the handlers' model
modules (numpy and Pillow come with them); ``genqueue.client`` itself does not.
"""

from __future__ import annotations

from pydantic import BaseModel

from genqueue.handlers.compose.models import ComposeResult
from genqueue.handlers.diagnose.models import DiagnoseResult
from genqueue.handlers.features.models import FeatureResult
from genqueue.handlers.image import ImageResult
from genqueue.handlers.video.models import VideoResult

__all__ = [
    "RESULT_TYPES",
    "ComposeResult",
    "DiagnoseResult",
    "FeatureResult",
    "ImageResult",
    "VideoResult",
]

# The result model of each built-in kind, by kind name.
RESULT_TYPES: dict[str, type[BaseModel]] = {
    "image.generate": ImageResult,
    "image.compose": ComposeResult,
    "video.generate": VideoResult,
    "feature.extract": FeatureResult,
    "image.diagnose": DiagnoseResult,
}
