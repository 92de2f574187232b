"""API keys in the Store, run against every backend: hashed at rest, found by hash, listed,
revoked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from genqueue.contracts import Store
from genqueue.keys import KeyNotFoundError, hash_key, new_key, well_formed
from genqueue.models import ApiKey, Role, utcnow
from tests.helpers import unique_name


async def stored_key(store: Store, role: Role = Role.USER, **fields: str) -> tuple[ApiKey, str]:
    record, key = new_key(fields.get("user", unique_name("u")), role, fields.get("label"))
    await store.create_key(record, hash_key(key))
    return record, key


async def test_a_created_key_is_found_by_its_hash_with_its_record(store: Store) -> None:
    record, key = await stored_key(store, Role.OPERATOR, user="ann", label="ci")
    assert well_formed(key) and key.startswith("gq_") and key[3:].startswith(record.id)
    found = await store.key_by_hash(hash_key(key))
    assert found is not None
    assert (found.id, found.user, found.role, found.label) == (record.id, "ann", "operator", "ci")
    assert abs(found.created_at - record.created_at) < timedelta(milliseconds=5)
    assert found.revoked_at is None


async def test_an_unknown_hash_finds_nothing(store: Store) -> None:
    await stored_key(store)
    _, never_stored = new_key("bob", Role.USER)
    assert await store.key_by_hash(hash_key(never_stored)) is None


async def test_the_key_itself_is_not_a_lookup_value(store: Store) -> None:
    """Only the hash finds a key: the stored value is not the key."""
    _, key = await stored_key(store)
    assert await store.key_by_hash(key) is None


async def test_keys_are_listed_newest_first_revoked_ones_included(store: Store) -> None:
    first, _ = await stored_key(store, user="ann")
    second, _ = await stored_key(store, Role.ADMIN, user="root")
    await store.revoke_key(first.id)
    listed = [k for k in await store.list_keys() if k.id in {first.id, second.id}]
    assert [k.id for k in listed] == [second.id, first.id]
    assert listed[0].revoked_at is None and listed[1].revoked_at is not None
    assert listed[0].label is None


async def test_revoke_marks_the_key_once_and_lookup_shows_it(store: Store) -> None:
    record, key = await stored_key(store)
    before = utcnow() - timedelta(seconds=1)
    revoked = await store.revoke_key(record.id)
    assert revoked.revoked_at is not None and revoked.revoked_at >= before
    again = await store.revoke_key(record.id)
    assert again.revoked_at == revoked.revoked_at  # idempotent: the first time stays
    found = await store.key_by_hash(hash_key(key))
    assert found is not None and found.revoked_at == revoked.revoked_at


async def test_revoking_an_unknown_key_is_not_found(store: Store) -> None:
    with pytest.raises(KeyNotFoundError):
        await store.revoke_key("nosuchkey0")


async def test_a_duplicate_id_is_refused_and_the_first_key_kept(store: Store) -> None:
    record, key = await stored_key(store, user="ann")
    _, other = new_key("mallory", Role.ADMIN)
    clash = record.model_copy(update={"user": "mallory", "role": Role.ADMIN})
    with pytest.raises(ValueError, match="exists"):
        await store.create_key(clash, hash_key(other))
    assert await store.key_by_hash(hash_key(other)) is None
    found = await store.key_by_hash(hash_key(key))
    assert found is not None and (found.user, found.role) == ("ann", Role.USER)
