"""/v1/session: the console signs in with a key. ``POST`` checks the key and keeps it in an
HttpOnly cookie (the browser's EventSource cannot send an Authorization header, but sends
cookies), ``GET`` says who the caller is, ``DELETE`` signs out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from genqueue.api.auth import COOKIE, PrincipalDep, auth_of, principal_of_key
from genqueue.api.errors import error_responses
from genqueue.models import Role

router = APIRouter(prefix="/v1/session", tags=["session"])

SESSION_S = 12 * 3600  # the cookie's life; the key's own revocation still applies at once


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200, description="an API key, gq_...")


class SessionPublic(BaseModel):
    auth: bool = Field(description="whether this API asks for keys at all")
    user: str | None
    role: Role
    key_id: str | None


@router.post("", response_model=SessionPublic, responses=error_responses(503))
async def sign_in(body: SessionCreate, request: Request, response: Response) -> SessionPublic:
    """Check the key (401 if it is not valid) and set the session cookie. With auth off
    there is nothing to sign in to: the answer says so and sets no cookie."""
    if not auth_of(request).enabled:
        return SessionPublic(auth=False, user=None, role=Role.OPERATOR, key_id=None)
    caller = await principal_of_key(request, body.key.strip())
    response.set_cookie(
        COOKIE,
        body.key.strip(),
        max_age=SESSION_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return SessionPublic(auth=True, user=caller.user, role=caller.role, key_id=caller.key_id)


@router.get("", response_model=SessionPublic, responses=error_responses(503))
async def who(request: Request, caller: PrincipalDep) -> SessionPublic:
    """The caller's user and role (by header or cookie); 401 without a valid key."""
    enabled = auth_of(request).enabled
    return SessionPublic(auth=enabled, user=caller.user, role=caller.role, key_id=caller.key_id)


@router.delete("", status_code=204, response_class=Response)
async def sign_out() -> Response:
    """Forget the session cookie (the key itself stays valid: revoke it for that)."""
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
