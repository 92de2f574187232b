"""Crash points for fault tests: ``GENQUEUE_FAULTS=name[,name]`` makes the process SIGKILL
itself when it reaches a named point, so a test can prove that no crash at that point loses
anything. Unset (always, outside tests) it costs one environment lookup per call."""

from __future__ import annotations

import os
import signal

AFTER_STORE_SUBMIT = "after-store-submit"  # tasks stored with their outbox rows, not published


def crash_point(name: str) -> None:
    if name in os.environ.get("GENQUEUE_FAULTS", "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)
