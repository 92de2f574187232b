"""Standard Webhooks signing and verification, against the specification's published test
vector (the reference libraries' ``sign function works`` case) and an independent HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from genqueue.webhook_signature import (
    TOLERANCE_S,
    WebhookVerificationError,
    new_secret,
    sign,
    sign_headers,
    verify,
)

# From standard-webhooks/standard-webhooks, libraries/*/tests: the same in every language.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = '{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def vector_headers(signature: str = EXPECTED) -> dict[str, str]:
    return {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": signature,
    }


def test_sign_matches_the_published_test_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED
    assert sign(SECRET, MSG_ID, datetime.fromtimestamp(TIMESTAMP, UTC), BODY.encode()) == EXPECTED
    assert sign(SECRET.removeprefix("whsec_"), MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_verify_accepts_the_published_test_vector_and_returns_the_message() -> None:
    message = verify(SECRET, BODY, vector_headers(), now=TIMESTAMP + 10)
    assert (message.id, message.timestamp) == (MSG_ID, TIMESTAMP)
    assert message.json() == {"test": 2432232314}


def test_signature_is_the_hmac_of_id_timestamp_and_body_with_the_decoded_secret() -> None:
    secret = new_secret()
    body = b'{"type":"task.succeeded","data":{"id":"t1"}}'
    headers = sign_headers(secret, "evt_1", body, timestamp=1_700_000_000)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, b"evt_1.1700000000." + body, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "evt_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    # Header names in any case, as a web framework hands them over.
    spelled = {k.title(): v for k, v in headers.items()}
    assert verify(secret, body, spelled, now=1_700_000_000).body == body


@pytest.mark.parametrize(
    "change",
    ["body", "id", "timestamp", "secret"],
)
def test_any_change_to_what_was_signed_is_refused(change: str) -> None:
    headers = vector_headers()
    body, secret = BODY, SECRET
    if change == "body":
        body = BODY.replace("2432232314", "2432232315")
    elif change == "id":
        headers["webhook-id"] = MSG_ID + "x"
    elif change == "timestamp":
        headers["webhook-timestamp"] = str(TIMESTAMP + 1)
    else:
        secret = new_secret(24)
    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify(secret, body, headers, now=TIMESTAMP)


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_named(header: str) -> None:
    headers = vector_headers()
    del headers[header]
    with pytest.raises(WebhookVerificationError, match=f"missing header.*{header}"):
        verify(SECRET, BODY, headers, now=TIMESTAMP)


@pytest.mark.parametrize("stamp", ["hello", "1614265330.5", "-1614265330", "١٦١٤٢٦٥٣٣٠"])
def test_a_timestamp_that_is_not_integer_seconds_is_refused(stamp: str) -> None:
    headers = {**vector_headers(), "webhook-timestamp": stamp}
    with pytest.raises(WebhookVerificationError, match="not integer seconds"):
        verify(SECRET, BODY, headers, now=TIMESTAMP)


def test_timestamps_outside_five_minutes_are_refused_either_way() -> None:
    assert TOLERANCE_S == 300
    verify(SECRET, BODY, vector_headers(), now=TIMESTAMP + 300)
    verify(SECRET, BODY, vector_headers(), now=TIMESTAMP - 300)
    with pytest.raises(WebhookVerificationError, match="301 s old"):
        verify(SECRET, BODY, vector_headers(), now=TIMESTAMP + 301)
    with pytest.raises(WebhookVerificationError, match="301 s in the future"):
        verify(SECRET, BODY, vector_headers(), now=TIMESTAMP - 301)


def test_one_matching_signature_among_several_is_enough() -> None:
    # The reference libraries' multi-signature case: wrong v1, unknown v2, the valid one.
    signatures = [
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
        EXPECTED,
        "v1,not-base64!",
    ]
    verify(SECRET, BODY, vector_headers(" ".join(signatures)), now=TIMESTAMP)


@pytest.mark.parametrize(
    "signature",
    [
        "v1,",
        EXPECTED[:8],
        "v1a," + EXPECTED.removeprefix("v1,"),  # the right bytes under another scheme
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",  # the vector, one bit off
    ],
)
def test_partial_or_foreign_signatures_do_not_verify(signature: str) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, BODY, vector_headers(signature), now=TIMESTAMP)


def test_rotation_signs_with_both_secrets_and_either_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = sign_headers([new, old], "evt_2", BODY, timestamp=TIMESTAMP)
    assert len(headers["webhook-signature"].split()) == 2
    for receiver in (old, new, [new_secret(), old]):
        assert verify(receiver, BODY, headers, now=TIMESTAMP).id == "evt_2"
    with pytest.raises(WebhookVerificationError):
        verify(new_secret(), BODY, headers, now=TIMESTAMP)


def test_new_secrets_are_random_whsec_strings_of_the_allowed_size() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert len(base64.b64decode(new_secret(64)[6:])) == 64
    with pytest.raises(ValueError, match="24 to 64"):
        new_secret(16)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("whsec_c2hvcnQ=", "24 to 64 bytes, this one 5"),
        ("whsec_not base64 at all", "base64"),
        ("", "24 to 64 bytes, this one 0"),
    ],
)
def test_a_bad_secret_is_a_clear_error(secret: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        sign(secret, MSG_ID, TIMESTAMP, BODY)
    with pytest.raises(ValueError, match=problem):
        verify(secret, BODY, vector_headers(), now=TIMESTAMP)


def test_ids_that_would_make_the_signed_text_ambiguous_are_refused() -> None:
    for msg_id in ("", "msg.1", "msg 1"):
        with pytest.raises(ValueError, match="webhook id"):
            sign(SECRET, msg_id, TIMESTAMP, BODY)
    with pytest.raises(ValueError, match="time zone"):
        sign(SECRET, MSG_ID, datetime(2021, 2, 25), BODY)  # naive, on purpose
