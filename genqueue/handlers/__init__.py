"""Built-in kinds, registered through the ``genqueue.kinds`` entry point."""

from genqueue.handlers import debug, image

KINDS = [*debug.KINDS, *image.KINDS]
