"""Loads the Lua scripts of this package; store scripts get ``common.lua`` prepended."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def _text(name: str) -> str:
    return files("genqueue.backends.redis").joinpath(f"{name}.lua").read_text()


def load(redis: Redis, names: list[str], *, prelude: str) -> dict[str, AsyncScript]:
    """Register ``names``, each with the ``prelude`` script's helpers in front."""
    head = _text(prelude) + "\n"
    return {name: redis.register_script(head + _text(name)) for name in names}


def pairs(flat: list[Any]) -> dict[str, str]:
    """HGETALL as returned by a script (a flat list) -> dict."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
