"""Built-in kinds, registered through the ``genqueue.kinds`` entry point."""

from genqueue.handlers import compose, debug, diagnose, features, image, video

KINDS = [
    *debug.KINDS,
    *image.KINDS,
    *compose.KINDS,
    *video.KINDS,
    *diagnose.KINDS,
    *features.KINDS,
]
