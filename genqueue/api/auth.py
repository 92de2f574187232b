"""Who is calling: API keys to a :class:`Principal` (user and role), one FastAPI dependency.

Requests carry ``Authorization: Bearer <key>``; the console's EventSource, which cannot send
headers, carries the same key in the HttpOnly cookie ``POST /v1/session`` sets. With auth off
(``GENQUEUE_AUTH=off``, or ``auto`` on loopback) every request is :data:`ANONYMOUS`, an
operator with no user: what the API was before keys.

Keys are looked up by hash (``genqueue.keys``) and the answer kept ``CACHE_S`` seconds, so a
busy client costs the store one lookup per few seconds, and a revoked key stops working
within that time on every API process (at once on the one that revoked it).

Isolation (docs/security.md): a ``user`` key sees only its own tasks, batches, events and
uploads; anyone else's answers 404 exactly as an unknown id does, so ids do not leak.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from genqueue.api.deps import get_runtime
from genqueue.api.errors import error_response
from genqueue.api.schemas import ErrorBody
from genqueue.errors import FieldProblem, GenqueueError, InvalidInputError, TaskNotFoundError
from genqueue.keys import hash_key, well_formed
from genqueue.models import ApiKey, Role
from genqueue.settings import Settings

CACHE_S = 5.0  # how long a looked-up key is trusted; also how late a revoke can bite
CACHE_MAX = 10_000  # keys remembered at once (least recently used leave first)
COOKIE = "genqueue_key"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="genqueue"'}


class UnauthorizedError(GenqueueError):
    """No key, or a key that is unknown, malformed or revoked (HTTP 401)."""


class ForbiddenError(GenqueueError):
    """A valid key whose role may not do this (HTTP 403). Never for another user's data:
    that is a 404, as if it did not exist."""


@dataclass(frozen=True)
class Principal:
    """The caller: a key's user and role, or :data:`ANONYMOUS` with auth off."""

    user: str | None
    role: Role
    key_id: str | None = None
    # The key's own quotas as stored (genqueue/api/quotas.py resolves the defaults).
    tasks_per_minute: int | None = None
    in_flight: int | None = None

    @property
    def sees_all(self) -> bool:
        """Operators and admins see every user's tasks; a user only their own."""
        return self.role.rank >= Role.OPERATOR.rank

    def may(self, role: Role) -> bool:
        return self.role.rank >= role.rank


ANONYMOUS = Principal(user=None, role=Role.OPERATOR)


def resolve_auth(setting: str, host: str | None) -> Literal["on", "off"]:
    """``auto`` is off when the API listens only on loopback (``host`` 127.x, ::1,
    localhost), on for any other host (0.0.0.0 included); on and off are themselves. An
    unknown host (an app built without the CLI) leaves ``auto`` off."""
    if setting in ("on", "off"):
        return "on" if setting == "on" else "off"
    if host is None or host == "localhost":
        return "off"
    try:
        return "off" if ipaddress.ip_address(host.strip("[]")).is_loopback else "on"
    except ValueError:
        return "on"  # a host name other than localhost: reachable from elsewhere


class KeyCache:
    """Recently seen keys by hash, each trusted ``ttl_s`` seconds. Misses are not kept, so a
    key made a moment ago works at once."""

    def __init__(self, ttl_s: float = CACHE_S, max_size: int = CACHE_MAX) -> None:
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._entries: OrderedDict[str, tuple[float, ApiKey]] = OrderedDict()

    def get(self, key_hash: str, now: float) -> ApiKey | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] <= now:
            self._entries.pop(key_hash, None)
            return None
        self._entries.move_to_end(key_hash)
        return entry[1]

    def put(self, key_hash: str, key: ApiKey, now: float) -> None:
        self._entries[key_hash] = (now + self.ttl_s, key)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def forget(self, key_id: str) -> None:
        """Drop a key (revoked here), so this process refuses it at once."""
        for key_hash in [h for h, (_, k) in self._entries.items() if k.id == key_id]:
            del self._entries[key_hash]


@dataclass
class Auth:
    """The app's auth state (``app.state.auth``): on or off, and the key cache."""

    enabled: bool
    cache: KeyCache


def auth_of(request: Request) -> Auth:
    auth: Auth = request.app.state.auth
    return auth


def presented_key(request: Request) -> str | None:
    """The key the request carries: the bearer token, else the session cookie."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthorizedError("the Authorization header must be 'Bearer <key>'")
        return token.strip()
    return request.cookies.get(COOKIE) or None


async def principal_of_key(request: Request, key: str) -> Principal:
    """The principal of ``key``, or ``UnauthorizedError``; cached as the module says."""
    if not well_formed(key):
        raise UnauthorizedError("not a genqueue API key (they look like gq_...)")
    auth, key_hash, now = auth_of(request), hash_key(key), time.monotonic()
    record = auth.cache.get(key_hash, now)
    if record is None:
        record = await get_runtime(request).store.key_by_hash(key_hash)
        if record is None:
            raise UnauthorizedError("unknown API key")
        auth.cache.put(key_hash, record, now)
    if record.revoked_at is not None:
        raise UnauthorizedError(f"API key {record.id} was revoked")
    return Principal(
        user=record.user,
        role=record.role,
        key_id=record.id,
        tasks_per_minute=record.tasks_per_minute,
        in_flight=record.in_flight,
    )


async def principal(request: Request) -> Principal:
    """The dependency: the caller, 401 without a valid key while auth is on."""
    if not auth_of(request).enabled:
        return ANONYMOUS
    key = presented_key(request)
    if key is None:
        raise UnauthorizedError("an API key is required: send 'Authorization: Bearer <key>'")
    return await principal_of_key(request, key)


PrincipalDep = Annotated[Principal, Depends(principal)]


def require(role: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the caller, 403 unless their role is at least ``role``."""

    async def check(caller: PrincipalDep) -> Principal:
        if not caller.may(role):
            raise ForbiddenError(f"this needs the {role} role; this key has {caller.role}")
        return caller

    check.__name__ = f"require_{role}"
    return check


OperatorDep = Annotated[Principal, Depends(require(Role.OPERATOR))]
AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]


def not_found(what: str, ident: str) -> TaskNotFoundError:
    """The 404 of an id the caller may not see: the same words as an unknown one."""
    return TaskNotFoundError(f"no {what} {ident!r}")


def check_owner(caller: Principal, owner: str | None, what: str, ident: str) -> None:
    """404 unless ``caller`` may see what ``owner`` owns."""
    if not caller.sees_all and owner != caller.user:
        raise not_found(what, ident)


def submitter(caller: Principal, requested: str | None, field: str = "user") -> str | None:
    """The user a new task or batch belongs to. A user key's own user, always: naming another
    user is refused (422, naming the field) rather than silently changed. Operators and
    admins submit for anyone (their own user when they name none); anonymous as asked."""
    if caller.sees_all:
        return requested or caller.user
    if requested is not None and requested != caller.user:
        message = f"a user key submits as its own user {caller.user!r} only"
        raise InvalidInputError([FieldProblem(field, message)])
    return caller.user


def listed_user(caller: Principal, requested: str | None) -> tuple[str | None, bool]:
    """The ``user`` filter of a listing, and whether it can match anything: a user key lists
    its own only (naming another user lists nothing)."""
    if caller.sees_all:
        return requested, True
    return caller.user, requested is None or requested == caller.user


# A role below the route's: documented on admin routes always (with auth off the caller is
# an operator, still refused there), on every guarded route when auth is on.
ROLE_REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "this key's role may not do this"}
}


def auth_responses(settings: Settings) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` every guarded route gains when auth is on (none when off:
    then no route answers them)."""
    if settings.auth != "on":
        return {}
    challenge = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
    return {
        401: {
            "model": ErrorBody,
            "description": "no API key, or one unknown, malformed or revoked",
            "headers": challenge,
        },
        **ROLE_REFUSED,
    }


def install_auth(app: FastAPI, settings: Settings) -> None:
    """Auth state on ``app`` (on only for ``auth=on``: the CLI resolves ``auto`` first, see
    :func:`resolve_auth`) and the 401/403 error handlers."""
    app.state.auth = Auth(enabled=settings.auth == "on", cache=KeyCache())

    async def on_unauthorized(_: Request, exc: Exception) -> JSONResponse:
        return error_response(401, "unauthorized", str(exc), headers=CHALLENGE)

    async def on_forbidden(_: Request, exc: Exception) -> JSONResponse:
        return error_response(403, "forbidden", str(exc))

    app.add_exception_handler(UnauthorizedError, on_unauthorized)
    app.add_exception_handler(ForbiddenError, on_forbidden)
