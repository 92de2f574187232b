"""Dependency aliases for routes: ``RuntimeDep`` and friends, all from ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from genqueue.api.runtime import Runtime
from genqueue.contracts import Store
from genqueue.dispatch import Dispatcher


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_store(request: Request) -> Store:
    return get_runtime(request).store


def get_dispatcher(request: Request) -> Dispatcher:
    return get_runtime(request).dispatcher


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
StoreDep = Annotated[Store, Depends(get_store)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
