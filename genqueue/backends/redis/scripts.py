"""Loads the Lua scripts of this package; store scripts get ``common.lua`` and ``fair.lua``
prepended."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def _text(name: str) -> str:
    return files("genqueue.backends.redis").joinpath(f"{name}.lua").read_text()


def load(redis: Redis, names: list[str], *, prelude: Sequence[str]) -> dict[str, AsyncScript]:
    """Register ``names``, each with the ``prelude`` scripts' helpers in front, in order."""
    head = "".join(_text(name) + "\n" for name in prelude)
    return {name: redis.register_script(head + _text(name)) for name in names}


def pairs(flat: list[Any]) -> dict[str, str]:
    """HGETALL as returned by a script (a flat list) -> dict."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
