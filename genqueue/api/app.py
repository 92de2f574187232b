"""create_app(settings): the FastAPI application. Nothing is opened at import time; the
lifespan opens the store, broker, event hub and sweeper and closes them on shutdown."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from genqueue.api.compat import mount_compat
from genqueue.api.errors import BodyLimit, install_error_handlers
from genqueue.api.routes import (
    batches,
    cluster,
    collections,
    events,
    limits,
    ops,
    prompts,
    stats,
    tasks,
    uploads,
)
from genqueue.api.runtime import Runtime
from genqueue.console.router import mount_console
from genqueue.kinds import KindRegistry, load_kinds
from genqueue.metrics import Metrics
from genqueue.settings import Settings


def create_app(settings: Settings, kinds: KindRegistry | None = None) -> FastAPI:
    registry = kinds or load_kinds()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings, registry)
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.aclose()

    app = FastAPI(
        title="genqueue",
        version="0.1.0",
        description="A distributed job queue for AI workloads.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    install_error_handlers(app)

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.http_requests.labels(request.method, path, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        if request.method == "POST" and path == "/v1/tasks" and response.status_code == 201:
            metrics.submitted.labels("any").inc()
        return response

    for module in (
        tasks,
        batches,
        cluster,
        limits,
        events,
        ops,
        uploads,
        collections,
        prompts,
        stats,
    ):
        app.include_router(module.router)
    mount_compat(app, settings.compat)
    mount_console(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        per_path={"/v1/uploads": settings.max_upload_bytes},
    )
    return app
