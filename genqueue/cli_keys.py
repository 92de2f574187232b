"""``genqueue keys create | list | revoke``: API keys, straight in the store.

These talk to the store the settings name (``GENQUEUE_STORE``, ``.env``), not to an API: the
first admin key of a deployment is made before any key exists, and an operator with access
to the store is trusted with it anyway. Over HTTP the same is ``/v1/keys`` (admin keys).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from genqueue.contracts import Store
from genqueue.errors import GenqueueError
from genqueue.keys import ID_CHARS, MAX_LABEL, MAX_USER, hash_key, new_key
from genqueue.models import ApiKey, Role
from genqueue.redact import redact_text

T = TypeVar("T")

keys_app = typer.Typer(help="API keys (in the store): create, list, revoke.", no_args_is_help=True)
out = Console(highlight=False)


def _with_store(fn: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``fn`` on the configured store; a genqueue error is one red line and exit 1."""
    from genqueue.backends import open_store
    from genqueue.settings import load_settings

    async def run() -> T:
        settings = load_settings()
        store = await open_store(settings.store, settings)
        try:
            return await fn(store)
        finally:
            await store.aclose()

    try:
        return asyncio.run(run())
    except GenqueueError as exc:
        out.print(f"[red]error:[/] {escape(redact_text(str(exc)))}", soft_wrap=True)
        raise typer.Exit(1) from None


@keys_app.command()
def create(
    user: Annotated[str, typer.Option(help="whose key it is")],
    role: Annotated[Role, typer.Option(help="user: own tasks; operator: all; admin: keys")],
    label: Annotated[str | None, typer.Option(help="what the key is for")] = None,
    tasks_per_minute: Annotated[
        int | None, typer.Option(min=0, help="submit quota; unset: the default; 0: unlimited")
    ] = None,
    in_flight: Annotated[
        int | None,
        typer.Option(min=0, help="queued + running tasks; unset: the default; 0: unlimited"),
    ] = None,
) -> None:
    """Make a key and print it, once: it is not stored, only its hash is."""
    if not user.strip() or len(user) > MAX_USER:
        raise typer.BadParameter(f"1 to {MAX_USER} characters", param_hint="--user")
    if label is not None and len(label) > MAX_LABEL:
        raise typer.BadParameter(f"at most {MAX_LABEL} characters", param_hint="--label")
    record, key = new_key(user, role, label)
    record = record.model_copy(
        update={"tasks_per_minute": tasks_per_minute, "in_flight": in_flight}
    )
    _with_store(lambda store: store.create_key(record, hash_key(key)))
    out.print(f"key {record.id} for {escape(user)} ({role}); shown once, keep it safe:")
    print(key)


@keys_app.command("list")
def list_keys() -> None:
    """Every key: id, user, role, label, created, revoked (never the key)."""
    keys: list[ApiKey] = _with_store(lambda store: store.list_keys())
    # The id is what revoke takes: never wrapped, whatever the terminal's width.
    key_id = Column("id", no_wrap=True, min_width=ID_CHARS)
    table = Table(key_id, "user", "role", "label", "per minute", "in flight", "created", "revoked")
    for k in keys:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
        table.add_row(
            k.id,
            escape(k.user),
            str(k.role),
            escape(k.label or ""),
            _quota(k.tasks_per_minute),
            _quota(k.in_flight),
            k.created_at.isoformat(timespec="seconds"),
            revoked,
        )
    out.print(table)


def _quota(value: int | None) -> str:
    """A key's own quota as listed: unset (the deployment's default) or 0 (unlimited)."""
    return "default" if value is None else "unlimited" if value == 0 else str(value)


@keys_app.command()
def revoke(key_id: Annotated[str, typer.Argument(help="the key's id (from `keys list`)")]) -> None:
    """Revoke a key: every API process refuses it within a few seconds."""
    record = _with_store(lambda store: store.revoke_key(key_id))
    assert record.revoked_at is not None
    out.print(f"key {record.id} of {escape(record.user)} revoked at {record.revoked_at:%c}")
