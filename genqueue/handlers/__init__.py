"""Built-in kinds, registered through the ``genqueue.kinds`` entry point."""

from genqueue.handlers import debug, diagnose, image, video

KINDS = [*debug.KINDS, *image.KINDS, *video.KINDS, *diagnose.KINDS]
