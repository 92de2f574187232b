"""Tencent Cloud API 3.0 request signing (TC3-HMAC-SHA256), pure functions.

Written out rather than taken from ``tencentcloud-sdk-python`` because the SDK's client is
synchronous (requests) and we need one async call path on httpx; the algorithm is short and
public. The stand-in (genqueue/standins/tencent_vod.py) verifies with the same function, and
tests/test_video_cloud.py pins it to the worked example in Tencent's signature documentation.

    CanonicalRequest = POST \\n / \\n \\n content-type:..\\nhost:..\\nx-tc-action:..\\n \\n
                       content-type;host;x-tc-action \\n hex(sha256(body))
    StringToSign     = TC3-HMAC-SHA256 \\n <timestamp> \\n <date>/<service>/tc3_request \\n
                       hex(sha256(CanonicalRequest))
    SigningKey       = HMAC(HMAC(HMAC("TC3" + SecretKey, date), service), "tc3_request")
    Authorization    = TC3-HMAC-SHA256 Credential=<SecretId>/<scope>, SignedHeaders=..,
                       Signature=hex(HMAC(SigningKey, StringToSign))
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host;x-tc-action"
_AUTHORIZATION = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<secret_id>[^/\s]+)/(?P<date>\d{4}-\d{2}-\d{2})/"
    r"(?P<service>[a-z0-9-]+)/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signature(
    *,
    secret_key: str,
    service: str,
    headers: Mapping[str, str],
    signed: str,
    body: bytes,
    timestamp: int,
) -> str:
    """The hex signature of one POST to ``/``; ``signed`` names the headers (lower case,
    ``;``-separated, sorted) whose values in ``headers`` take part."""
    lowered = {k.lower(): v for k, v in headers.items()}
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    names = signed.split(";")
    canonical_headers = "".join(f"{n}:{lowered.get(n, '').strip().lower()}\n" for n in names)
    canonical = f"POST\n/\n\n{canonical_headers}\n{signed}\n{_sha256(body)}"
    scope = f"{date}/{service}/tc3_request"
    to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{_sha256(canonical.encode())}"
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def signed_headers(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    action: str,
    version: str,
    body: bytes,
    timestamp: int,
    region: str = "",
) -> dict[str, str]:
    """Every header a TC3 request needs (Host is the one the HTTP client sends: host[:port])."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    headers = {"Content-Type": CONTENT_TYPE, "Host": host, "X-TC-Action": action}
    sig = signature(
        secret_key=secret_key,
        service=service,
        headers=headers,
        signed=SIGNED_HEADERS,
        body=body,
        timestamp=timestamp,
    )
    headers["Authorization"] = (
        f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={sig}"
    )
    headers["X-TC-Timestamp"] = str(timestamp)
    headers["X-TC-Version"] = version
    if region:
        headers["X-TC-Region"] = region
    return headers


@dataclass(frozen=True)
class Credential:
    """What an Authorization header claims: who signed, for which day and service."""

    secret_id: str
    date: str
    service: str
    signed_headers: str
    signature: str


def parse_authorization(value: str) -> Credential | None:
    """Split a TC3 Authorization header; None if it is not one."""
    match = _AUTHORIZATION.match(value)
    if match is None:
        return None
    return Credential(
        match["secret_id"], match["date"], match["service"], match["signed"], match["signature"]
    )
