"""API keys: how one is made and how the store recognises it, pure (no I/O).

A key reads ``gq_<40 letters and digits>`` (about 238 random bits). It is shown once, when it
is made; the store keeps only ``hash_key(key)``, so a copy of the database lets nobody in. A
plain SHA-256 is enough here, unlike for passwords: a key is long and uniformly random, so
there is nothing to guess by brute force that a slow KDF (bcrypt, argon2) would slow down, and
a fast hash lets every request be checked by one indexed lookup. The key's first
``ID_CHARS`` random characters are its public ``id``: what lists show and what revoke takes,
enough to tell keys apart and far too little to rebuild one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string

from genqueue.errors import TaskNotFoundError
from genqueue.models import ApiKey, Role, utcnow

PREFIX = "gq_"
RANDOM_CHARS = 40
ID_CHARS = 10
_ALPHABET = string.ascii_letters + string.digits
_SHAPE = re.compile(rf"^{PREFIX}[A-Za-z0-9]{{{RANDOM_CHARS}}}$")
MAX_USER = 200
MAX_LABEL = 200


class KeyNotFoundError(TaskNotFoundError):
    """No API key with that id (HTTP 404, like an unknown task)."""


def hash_key(key: str) -> str:
    """What the store keeps and looks keys up by: SHA-256, hex (see the module docstring)."""
    return hashlib.sha256(key.encode()).hexdigest()


def well_formed(key: str) -> bool:
    """Whether ``key`` has the shape of a genqueue key (checked before any lookup)."""
    return _SHAPE.match(key) is not None


def new_key(user: str, role: Role, label: str | None = None) -> tuple[ApiKey, str]:
    """A fresh key for ``user``: its record (to store, with :func:`hash_key` of the key) and
    the key itself, to show once and forget."""
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_CHARS))
    record = ApiKey(
        id=random_part[:ID_CHARS], user=user, role=role, label=label, created_at=utcnow()
    )
    return record, PREFIX + random_part
