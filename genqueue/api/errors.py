"""How failures look on the wire: one JSON shape (``ErrorBody``), the field at fault named.

Every genqueue error maps to one status here; request validation errors are rewritten so that
``loc`` becomes a dotted field path without FastAPI's ``body.`` prefix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genqueue.api.schemas import ErrorBody, FieldError, QuotaRefusal
from genqueue.errors import (
    BackendUnavailableError,
    ForbiddenPathError,
    IdempotencyConflictError,
    InvalidInputError,
    QuotaExceededError,
    ResultExpiredError,
    TaskNotFoundError,
)
from genqueue.redact import redact_text

RETRY_AFTER_S = 2  # what a 503 asks clients to wait; backends come back by themselves

# What each error status means on this API, as the OpenAPI documents it (``error_responses``).
ERROR_MEANINGS: dict[int, str] = {
    400: "the body is not JSON text in UTF-8",
    403: "a path outside the input root (nothing is read)",
    404: "no such id or name (or it expired)",
    405: "method not allowed: `Allow` lists the methods of this path",
    409: "the Idempotency-Key was used for a different request",
    410: "the task's results and artifacts expired (GENQUEUE_RETENTION after it finished)",
    413: "the body is over the size limit",
    422: "invalid input: `fields` names each field at fault",
    429: "past a quota or a queue bound (`limit` says which): nothing stored; retry after"
    " `Retry-After` seconds",
    503: "a backend (store, broker, model) is unavailable: retry after `Retry-After` seconds",
}
RETRY_AFTER_HEADER: dict[str, Any] = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
        "required": True,
    }
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route for the error statuses it can answer, each with the
    ``ErrorBody`` it really sends (and 503 with its ``Retry-After``)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": ERROR_MEANINGS[status]}
        if status in (429, 503):
            entry["headers"] = RETRY_AFTER_HEADER
        if status == 429:
            entry["model"] = QuotaRefusal
        responses[status] = entry
    return responses


def error_response(
    status: int,
    error: str,
    message: str,
    fields: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=error, message=message, fields=fields or [])
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def unavailable_response(message: str) -> JSONResponse:
    """503 naming the backend that is down, with ``Retry-After``."""
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    return error_response(503, "backend_unavailable", redact_text(message), headers=headers)


def quota_response(exc: QuotaExceededError) -> JSONResponse:
    """429 with ``Retry-After`` and the :class:`QuotaRefusal` body."""
    body = QuotaRefusal(
        error="quota_exceeded",
        message=str(exc),
        limit=exc.limit,
        retry_after_s=exc.retry_after_s,
        allowed=exc.allowed or 0,
        current=exc.current or 0,
        requested=exc.requested or 0,
        queue=exc.queue,
    )
    headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(body.model_dump(), status_code=429, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts)


def _validation_fields(exc: RequestValidationError) -> list[FieldError]:
    fields = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx", {})
            detail = ctx.get("error", "") if isinstance(ctx, dict) else ""
            fields.append(FieldError(field="body", message=f"malformed JSON: {detail}".strip()))
        else:
            fields.append(FieldError(field=_field(tuple(err["loc"])), message=err["msg"]))
    return fields


def install_error_handlers(app: FastAPI) -> None:
    """Map genqueue errors to statuses; backends map their drivers' errors to ours."""

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        fields = _validation_fields(exc)
        message = "; ".join(f"{f.field}: {f.message}" for f in fields)
        return error_response(422, "invalid_request", message, fields)

    async def on_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidInputError)
        fields = [FieldError(field=p.field, message=p.message) for p in exc.problems]
        return error_response(422, "invalid_request", str(exc), fields)

    async def on_forbidden(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ForbiddenPathError)
        fields = [FieldError(field=exc.field, message=str(exc))]
        return error_response(403, "forbidden_path", str(exc), fields)

    async def on_not_found(_: Request, exc: Exception) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    async def on_expired(_: Request, exc: Exception) -> JSONResponse:
        return error_response(410, "expired", str(exc))

    async def on_conflict(_: Request, exc: Exception) -> JSONResponse:
        return error_response(409, "idempotency_conflict", str(exc))

    async def on_quota(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, QuotaExceededError)
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.quota_refusals.labels(exc.limit).inc()
        return quota_response(exc)

    async def on_unavailable(_: Request, exc: Exception) -> JSONResponse:
        return unavailable_response(str(exc))

    async def on_timeout(_: Request, exc: Exception) -> JSONResponse:
        # A deadline around a backend call ran out: the backend is as good as down.
        return unavailable_response(f"a backend did not answer in time {exc}".strip())

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route matching the path only; a path
            # served by several routes (GET and DELETE /v1/collections/{name}) allows them all.
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
        return error_response(exc.status_code, "http_error", str(exc.detail), headers=headers)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(InvalidInputError, on_invalid)
    app.add_exception_handler(ForbiddenPathError, on_forbidden)
    app.add_exception_handler(TaskNotFoundError, on_not_found)
    app.add_exception_handler(ResultExpiredError, on_expired)
    app.add_exception_handler(IdempotencyConflictError, on_conflict)
    app.add_exception_handler(QuotaExceededError, on_quota)
    app.add_exception_handler(BackendUnavailableError, on_unavailable)
    app.add_exception_handler(TimeoutError, on_timeout)
    app.add_exception_handler(HTTPException, on_http)


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route of ``app`` serves at the path of ``scope``."""
    methods: set[str] = set()
    for route in _leaf_routes(app.router.routes):
        if getattr(route, "methods", None):
            match, _ = route.matches(scope)
            if match != Match.NONE:
                methods |= route.methods
    return sorted(methods)


def _leaf_routes(routes: list[Any]) -> Iterator[Any]:
    """The routes that answer requests. FastAPI keeps an included router as one entry whose
    ``effective_candidates()`` are its routes with the prefix applied (duck-typed: no public
    name for it)."""
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            yield from _leaf_routes(candidates())
        elif isinstance(route, Route) or hasattr(route, "matches"):
            yield route


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by header or while streaming.
    ``per_path`` raises or lowers the limit for exact paths (uploads take bigger bodies)."""

    def __init__(self, app: ASGIApp, max_bytes: int, per_path: dict[str, int] | None = None):
        self.app = app
        self.default_bytes = max_bytes
        self.per_path = per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default_bytes)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        # Read the body here, bounded, so a streamed (chunked) body over the limit is refused
        # before the application sees any of it; then replay it.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, replay([message], receive), send)
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > limit:
                await self._refuse(scope, receive, send, limit)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replay([whole], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(413, "body_too_large", f"request body exceeds {limit} bytes")
        await response(scope, receive, send)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive``, answering first with ``messages`` (a body a middleware already read)."""

    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed
