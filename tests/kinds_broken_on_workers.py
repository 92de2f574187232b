"""Test-only kinds module that loads in the API but not in a worker process, as a module would
whose worker-side setup is wrong (a model path, a driver only the workers need): ``genqueue up
--kinds tests.kinds_broken_on_workers`` serves the API while every worker fails at start, with
a ConfigError (exit 78), or with ``BROKEN_WORKERS=crash`` with a plain crash (exit 1)."""

from __future__ import annotations

import os
import sys

from pydantic import BaseModel

from genqueue import TaskContext, kind
from genqueue.errors import ConfigError

BROKEN = "workers cannot load tests.kinds_broken_on_workers (on purpose)"

if sys.argv[1:2] == ["worker"]:  # `python -m genqueue worker ...`
    if os.environ.get("BROKEN_WORKERS") == "crash":
        raise RuntimeError(BROKEN)
    raise ConfigError(BROKEN)


class Nothing(BaseModel):
    pass


@kind("test.broken", payload=Nothing, queue="broken")
def broken(payload: Nothing, ctx: TaskContext) -> None:
    """Never runs: no worker can load this module."""
