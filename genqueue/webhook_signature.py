"""Standard Webhooks signatures (https://www.standardwebhooks.com/), symmetric scheme ``v1``.

The sender (the API's webhook delivery) calls :func:`sign_headers` for each attempt; a
receiver calls :func:`verify` on the raw body it got, before parsing it. Three headers:

    webhook-id          the message id, the same on every retry (the receiver's idempotency key)
    webhook-timestamp   the attempt's time, integer Unix seconds (a new one on each retry)
    webhook-signature   "v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>", space-separated
                        when signed with several secrets (zero-downtime rotation)

Secrets are shown as ``whsec_<base64 of 24 to 64 random bytes>``; the HMAC key is the decoded
bytes, not the text. A timestamp more than five minutes away from the receiver's clock is
refused (replays), signatures are compared in constant time, and versions other than ``v1``
(``v1a``, asymmetric) are skipped, not failed, as the specification asks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from genqueue.errors import WebhookVerificationError

__all__ = [
    "SECRET_PREFIX",
    "TOLERANCE_S",
    "SignedMessage",
    "WebhookVerificationError",
    "new_secret",
    "sign",
    "sign_headers",
    "verify",
]

SECRET_PREFIX = "whsec_"
VERSION = "v1"
TOLERANCE_S = 300.0  # five minutes either way, as the specification's libraries do
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64  # the specification's bounds (192 to 512 bits)
ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)

Secrets = str | Sequence[str]
Body = bytes | str


def new_secret(nbytes: int = 32) -> str:
    """A fresh random signing secret, ``whsec_`` and the base64 of ``nbytes`` random bytes."""
    if not MIN_SECRET_BYTES <= nbytes <= MAX_SECRET_BYTES:
        raise ValueError(f"nbytes must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}, not {nbytes}")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (the prefix is optional, as other libraries accept
    it bare). ``ValueError`` naming the problem if it is no secret: it is a configuration
    mistake, not a bad request."""
    text = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes,"
            f" this one {len(key)}"
        )
    return key


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return hmac.new(key, signed, hashlib.sha256).digest()


def _as_list(secret: Secrets) -> list[str]:
    found = [secret] if isinstance(secret, str) else list(secret)
    if not found:
        raise ValueError("no webhook secret given")
    return found


def _as_bytes(body: Body) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)


def _unix(timestamp: int | float | datetime) -> int:
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is None:
            raise ValueError("the timestamp needs a time zone")
        return int(timestamp.timestamp())
    return int(timestamp)


def sign(secret: Secrets, msg_id: str, timestamp: int | float | datetime, body: Body) -> str:
    """The ``webhook-signature`` value: ``v1,<base64>`` per secret, space-separated (during a
    rotation, sign with the new and the old secret). ``body`` must be the exact bytes sent.
    The id may not contain ``.``, which would make the signed text ambiguous."""
    if not msg_id or "." in msg_id or any(c.isspace() for c in msg_id):
        raise ValueError(f"a webhook id must be non-empty, without '.' or spaces: {msg_id!r}")
    at, data = _unix(timestamp), _as_bytes(body)
    return " ".join(
        f"{VERSION},{base64.b64encode(_signature(secret_key(s), msg_id, at, data)).decode()}"
        for s in _as_list(secret)
    )


def sign_headers(
    secret: Secrets, msg_id: str, body: Body, timestamp: int | float | datetime | None = None
) -> dict[str, str]:
    """The three headers of one delivery attempt (the timestamp is now unless given)."""
    at = _unix(time.time() if timestamp is None else timestamp)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(at),
        SIGNATURE_HEADER: sign(secret, msg_id, at, body),
    }


@dataclass(frozen=True)
class SignedMessage:
    """A webhook whose signature checked out: its id (skip it if already processed), the
    attempt's timestamp and the body as sent."""

    id: str
    timestamp: int
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not)."""
        return json.loads(self.body)


def verify(
    secret: Secrets,
    body: Body,
    headers: Mapping[str, str],
    *,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> SignedMessage:
    """Check a received webhook: ``body`` is the raw request body (not re-serialised JSON),
    ``headers`` the request's headers (any case). Several secrets: any one may have signed
    (a receiver during a rotation). Returns the message; raises
    :class:`WebhookVerificationError` saying what is wrong, and never says which byte of a
    signature differed (compared in constant time)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    missing = [h for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if not lowered.get(h)]
    if missing:
        raise WebhookVerificationError(f"missing header(s): {', '.join(missing)}")
    msg_id, stamp = lowered[ID_HEADER], lowered[TIMESTAMP_HEADER].strip()
    if not stamp.isascii() or not stamp.isdigit():
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is not integer seconds: {stamp!r:.40}")
    at = int(stamp)
    skew = at - (time.time() if now is None else now)
    if abs(skew) > tolerance_s:
        when = "in the future" if skew > 0 else "old"
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER} is {abs(skew):.0f} s {when}; at most {tolerance_s:.0f} s allowed"
        )
    data = _as_bytes(body)
    expected = [_signature(secret_key(s), msg_id, at, data) for s in _as_list(secret)]
    if any(hmac.compare_digest(e, given) for given in _v1_signatures(lowered) for e in expected):
        return SignedMessage(msg_id, at, data)
    raise WebhookVerificationError("no v1 signature matches the secret")


def _v1_signatures(headers: Mapping[str, str]) -> list[bytes]:
    """The decoded ``v1`` signatures of the header; other versions and garbage are skipped."""
    found = []
    for item in headers[SIGNATURE_HEADER].split():
        version, _, encoded = item.partition(",")
        if version != VERSION:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found
