"""Which webhook targets genqueue calls, and what a submit may ask for.

A webhook makes the API's machine send requests where a user says: left open, that reaches
the machine's own services (``127.0.0.1``), the cloud's metadata endpoint
(``169.254.169.254``) and the private network behind it. So a target must be ``http(s)``,
and every address its host resolves to must be public: loopback, link-local, private,
carrier-grade NAT, multicast, unspecified and reserved ones are refused, unless
``GENQUEUE_WEBHOOKS__ALLOW_PRIVATE=true``. Checked at submit and again before every attempt,
since DNS answers change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from genqueue.errors import FieldProblem, GenqueueError, InvalidInputError
from genqueue.models import FINISHED, EventType
from genqueue.settings import WebhookSettings
from genqueue.webhooks.records import BATCH_FINISHED, WebhookTarget

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT_S = 5.0
MAX_URL_LENGTH = 2048
TASK_EVENTS = frozenset(e.value for e in EventType)
# When a submit names no events: how it ended (and, for a batch, that it ended).
TERMINAL_EVENTS = [f"task.{status.value}" for status in sorted(FINISHED)]


class TargetRefusedError(GenqueueError):
    """A webhook URL genqueue will not call: its scheme, or an address its host resolves to."""


class TargetUnresolvedError(GenqueueError):
    """A webhook host that does not resolve now (at send time: tried again later)."""


def refusal(address: Address) -> str | None:
    """Why ``address`` may not be called, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for reason, hit in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if hit:
            return f"{address} is a {reason} address"
    if not address.is_global:  # 100.64.0.0/10 and the like
        return f"{address} is not a public address"
    return None


def split_url(url: str) -> tuple[str, int]:
    """The host and port of a webhook URL; ``TargetRefusedError`` if it is none."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefusedError(f"at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefusedError("must be an http:// or https:// URL")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port out of range or not a number
        raise TargetRefusedError(f"bad URL: {exc}") from None
    if not host:
        raise TargetRefusedError("the URL names no host")
    return host, port or (443 if parts.scheme == "https" else 80)


async def addresses(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to now (an address literal: itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise TargetUnresolvedError(f"{host} does not resolve: {exc or 'timed out'}") from None
    # The scope of a link-local IPv6 address ("fe80::1%eth0") is not part of the address.
    return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]


async def check_target(url: str, allow_private: bool) -> None:
    """Raise ``TargetRefusedError`` unless ``url`` may be called now (every address of its
    host public, or ``allow_private``); ``TargetUnresolvedError`` if its host does not
    resolve (not checked with ``allow_private``: the request itself will say)."""
    host, port = split_url(url)
    if allow_private:
        return
    for address in await addresses(host, port):
        reason = refusal(address)
        if reason is not None:
            raise TargetRefusedError(f"{host} resolves to {reason}")


def checked_events(events: Sequence[str] | None, field: str, *, batch: bool) -> list[str]:
    """The events a webhook asks for, duplicates dropped; the terminal ones (and for a batch
    ``batch.finished``) when none are given. ``InvalidInputError`` naming each unknown one."""
    if events is None:
        return [*TERMINAL_EVENTS, *([BATCH_FINISHED] if batch else [])]
    known = TASK_EVENTS | ({BATCH_FINISHED} if batch else set())
    problems = []
    for i, name in enumerate(events):
        if name == BATCH_FINISHED and not batch:
            problems.append(FieldProblem(f"{field}.{i}", "batch.finished is for a batch's webhook"))
        elif name not in known:
            choices = ", ".join(sorted(known))
            problems.append(
                FieldProblem(f"{field}.{i}", f"unknown event {name!r}; one of {choices}")
            )
    if not events:
        problems.append(FieldProblem(field, "name at least one event, or leave it out"))
    if problems:
        raise InvalidInputError(problems)
    return list(dict.fromkeys(events))


async def submitted_target(
    url: str,
    events: Sequence[str] | None,
    settings: WebhookSettings,
    *,
    field: str = "webhook",
    batch: bool = False,
) -> WebhookTarget:
    """The target of a submit's ``webhook``, checked now: a signing secret configured, known
    events, a URL that may be called. ``InvalidInputError`` naming the field otherwise."""
    if not settings.secret.get_secret_value():
        message = "webhooks are off here: no signing secret (GENQUEUE_WEBHOOKS__SECRET) is set"
        raise InvalidInputError([FieldProblem(field, message)])
    names = checked_events(events, f"{field}.events", batch=batch)
    try:
        await check_target(url, settings.allow_private)
    except (TargetRefusedError, TargetUnresolvedError) as exc:
        raise InvalidInputError([FieldProblem(f"{field}.url", str(exc))]) from None
    return WebhookTarget(url=url, events=names)
