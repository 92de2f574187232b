"""/v1/keys: API keys, for admins. A new key is in the answer to its creation only; lists
show the public record (id, user, role, label, times), never a key or its hash."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from genqueue.api.auth import ROLE_REFUSED, AdminDep, auth_of
from genqueue.api.deps import StoreDep
from genqueue.api.errors import error_responses
from genqueue.api.schemas import WireInt
from genqueue.keys import ID_CHARS, MAX_LABEL, MAX_USER, KeyNotFoundError, hash_key, new_key
from genqueue.models import ApiKey, Role

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=MAX_USER, description="whose key it is")
    role: Role = Field(description="user: own tasks; operator: every task; admin: keys too")
    label: str | None = Field(None, max_length=MAX_LABEL, description="what it is for")
    tasks_per_minute: WireInt | None = Field(
        None, ge=0, description="submit quota; unset: the deployment's default; 0: unlimited"
    )
    in_flight: WireInt | None = Field(
        None, ge=0, description="queued + running tasks; unset: the default; 0: unlimited"
    )


class KeyCreated(BaseModel):
    id: str
    user: str
    role: Role
    label: str | None
    created_at: datetime
    tasks_per_minute: int | None
    in_flight: int | None
    key: str = Field(description="the key itself: shown this once, never again")


@router.post(
    "",
    status_code=201,
    response_model=KeyCreated,
    responses={**error_responses(503), **ROLE_REFUSED},
)
async def create_key(body: KeyCreate, store: StoreDep, _: AdminDep) -> KeyCreated:
    """Make a key for ``user`` with ``role``; the answer holds the key, once."""
    record, key = new_key(body.user, body.role, body.label)
    record = record.model_copy(
        update={"tasks_per_minute": body.tasks_per_minute, "in_flight": body.in_flight}
    )
    await store.create_key(record, hash_key(key))
    return KeyCreated(**record.model_dump(exclude={"revoked_at"}), key=key)


@router.get("", response_model=list[ApiKey], responses={**error_responses(503), **ROLE_REFUSED})
async def list_keys(store: StoreDep, _: AdminDep) -> list[ApiKey]:
    """Every key, newest first, revoked ones with ``revoked_at``."""
    return await store.list_keys()


@router.delete(
    "/{key_id}", response_model=ApiKey, responses={**error_responses(404, 503), **ROLE_REFUSED}
)
async def revoke_key(key_id: str, request: Request, store: StoreDep, _: AdminDep) -> ApiKey:
    """Revoke a key: refused at once by this API process, within seconds by the others.
    Idempotent; 404 for an unknown id."""
    if len(key_id) != ID_CHARS or not key_id.isalnum():
        raise KeyNotFoundError(f"no API key {key_id!r}")
    revoked = await store.revoke_key(key_id)
    auth_of(request).cache.forget(key_id)
    return revoked
