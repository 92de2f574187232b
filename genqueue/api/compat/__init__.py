"""Drop-in adapters: each system genqueue replaces (``../shared/seeds``) keeps its clients by
finding its own endpoints, shapes and status words here, translated onto the core (``/v1``
semantics, the same store and dispatcher). An adapter translates shapes only: no queue logic
of its own. Each is mounted unless switched off (``GENQUEUE_COMPAT__<NAME>=false``) and shows
in the OpenAPI under its own tag; ``docs/migrating/`` has a page per system.

Every module of this package is an adapter named like its ``CompatSettings`` field, with a
``router``.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter, FastAPI

from genqueue.settings import CompatSettings


def adapter_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def routers(enabled: CompatSettings) -> list[APIRouter]:
    """The routers of the adapters switched on, imported only then."""
    found = []
    for name in adapter_names():
        if getattr(enabled, name):
            module = importlib.import_module(f"{__name__}.{name}")
            found.append(module.router)
    return found


def mount_compat(app: FastAPI, enabled: CompatSettings) -> None:
    for router in routers(enabled):
        app.include_router(router)
