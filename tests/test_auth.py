"""The pure parts of auth: when ``auto`` means on, the key cache, roles, who submits as whom."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from genqueue.api.auth import (
    ANONYMOUS,
    KeyCache,
    Principal,
    listed_user,
    resolve_auth,
    submitter,
)
from genqueue.errors import InvalidInputError
from genqueue.keys import hash_key, new_key, well_formed
from genqueue.models import ApiKey, Role


@pytest.mark.parametrize(
    ("setting", "host", "expected"),
    [
        ("auto", "127.0.0.1", "off"),
        ("auto", "127.0.0.2", "off"),
        ("auto", "::1", "off"),
        ("auto", "[::1]", "off"),
        ("auto", "localhost", "off"),
        ("auto", "0.0.0.0", "on"),
        ("auto", "::", "on"),
        ("auto", "192.168.1.20", "on"),
        ("auto", "api.example.com", "on"),
        ("auto", None, "off"),
        ("on", "127.0.0.1", "on"),
        ("off", "0.0.0.0", "off"),
    ],
)
def test_auto_is_off_only_on_loopback(setting: str, host: str | None, expected: str) -> None:
    assert resolve_auth(setting, host) == expected


def record(key_id: str = "abcdefghij") -> ApiKey:
    return ApiKey(id=key_id, user="ann", role=Role.USER, created_at=datetime.now(UTC))


def test_a_cached_key_expires_after_its_time() -> None:
    cache, key = KeyCache(ttl_s=5), record()
    cache.put("h", key, now=100.0)
    assert cache.get("h", now=104.9) == key
    assert cache.get("h", now=105.0) is None
    assert cache.get("h", now=101.0) is None  # gone once expired


def test_forgetting_a_key_drops_it_at_once() -> None:
    cache = KeyCache(ttl_s=5)
    cache.put("h1", record("keyone0000"), now=0.0)
    cache.put("h2", record("keytwo0000"), now=0.0)
    cache.forget("keyone0000")
    assert cache.get("h1", now=1.0) is None
    assert cache.get("h2", now=1.0) is not None


def test_the_cache_keeps_the_most_recently_used_keys() -> None:
    cache = KeyCache(ttl_s=60, max_size=2)
    cache.put("a", record("aaaaaaaaaa"), now=0.0)
    cache.put("b", record("bbbbbbbbbb"), now=0.0)
    assert cache.get("a", now=1.0) is not None  # a is now the most recent
    cache.put("c", record("cccccccccc"), now=1.0)
    assert cache.get("b", now=2.0) is None
    assert cache.get("a", now=2.0) is not None and cache.get("c", now=2.0) is not None


def test_roles_rank_user_operator_admin() -> None:
    ann = Principal("ann", Role.USER, "k")
    ops = Principal("ops", Role.OPERATOR, "k")
    root = Principal("root", Role.ADMIN, "k")
    assert not ann.sees_all and ops.sees_all and root.sees_all
    assert ops.may(Role.OPERATOR) and not ops.may(Role.ADMIN) and root.may(Role.ADMIN)
    assert ANONYMOUS.sees_all and not ANONYMOUS.may(Role.ADMIN)


def test_a_user_key_submits_as_its_user_only() -> None:
    ann = Principal("ann", Role.USER, "k")
    assert submitter(ann, None) == "ann" and submitter(ann, "ann") == "ann"
    with pytest.raises(InvalidInputError) as refused:
        submitter(ann, "bob")
    assert refused.value.problems[0].field == "user"
    ops = Principal("ops", Role.OPERATOR, "k")
    assert submitter(ops, "bob") == "bob" and submitter(ops, None) == "ops"
    assert submitter(ANONYMOUS, None) is None and submitter(ANONYMOUS, "bob") == "bob"


def test_a_user_key_lists_its_own_only() -> None:
    ann = Principal("ann", Role.USER, "k")
    assert listed_user(ann, None) == ("ann", True)
    assert listed_user(ann, "ann") == ("ann", True)
    assert listed_user(ann, "bob") == ("ann", False)
    assert listed_user(ANONYMOUS, "bob") == ("bob", True)


def test_new_keys_are_random_well_formed_and_hashed() -> None:
    first, key = new_key("ann", Role.USER, "laptop")
    _, other = new_key("ann", Role.USER)
    assert well_formed(key) and key != other and key[3:].startswith(first.id)
    assert hash_key(key) != hash_key(other) and len(hash_key(key)) == 64
    assert key not in hash_key(key)
    assert not well_formed("gq_short") and not well_formed(key + "x")
