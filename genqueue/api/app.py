"""create_app(settings): the FastAPI application. Nothing is opened at import time; the
lifespan opens the store, broker, event hub and sweeper and closes them on shutdown."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response

from genqueue.api.auth import auth_responses, install_auth, principal, require
from genqueue.api.compat import routers as compat_routers
from genqueue.api.errors import BodyLimit, install_error_handlers
from genqueue.api.input_guard import InputGuard
from genqueue.api.openapi import install_openapi
from genqueue.api.routes import (
    batches,
    cluster,
    collections,
    events,
    keys,
    limits,
    ops,
    prompts,
    session,
    stats,
    tasks,
    uploads,
    webhooks,
)
from genqueue.api.runtime import Runtime
from genqueue.console.router import mount_console
from genqueue.kinds import KindRegistry, load_kinds
from genqueue.metrics import Metrics
from genqueue.models import Role
from genqueue.settings import Settings


def create_app(settings: Settings, kinds: KindRegistry | None = None) -> FastAPI:
    registry = kinds or load_kinds()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings, registry, metrics=metrics)
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

    install_auth(app, settings)
    # Who may call what (docs/security.md): every router asks for a key when auth is on,
    # except /health (ops) and /v1/session, whose routes decide for themselves.
    signed_in = [Depends(principal)]
    operator = [Depends(require(Role.OPERATOR))]
    guarded = auth_responses(settings)
    for module, guard in (
        (tasks, signed_in),
        (batches, signed_in),
        (cluster, signed_in),
        (limits, operator),
        (events, signed_in),
        (ops, []),
        (uploads, signed_in),
        (webhooks, signed_in),
        (collections, signed_in),
        (prompts, signed_in),
        (stats, operator),
        (keys, signed_in),
        (session, []),
    ):
        app.include_router(module.router, dependencies=guard, responses=guarded if guard else None)
    # The seeds had no keys: with auth on, their adapters serve operator keys only.
    for router in compat_routers(settings.compat):
        app.include_router(router, dependencies=operator, responses=guarded)
    mount_console(app)
    install_openapi(app, registry, settings.max_batch)
    # Added first, so it runs inside BodyLimit: the body it reads is already bounded.
    app.add_middleware(InputGuard)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        per_path={"/v1/uploads": settings.max_upload_bytes},
    )
    return app
