"""Schemathesis, driven by /openapi.json, against a real API and worker on the embedded
SQLite store finds nothing: no 5xx, no undocumented status, header or media type, no body
unlike its schema, no valid request refused, no invalid one taken, an ``Allow`` on every 405.

A short deterministic run (fixed seed, few examples per operation); ``make fuzz`` runs the
long one. What is left out, and why, is in tests/openapi_fuzz.py.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Cluster
from tests.openapi_fuzz import fuzz

pytestmark = pytest.mark.system

SEED = 20261
MAX_EXAMPLES = 8


@pytest.fixture
def fuzzed(tmp_path: Path) -> Iterator[Cluster]:
    """An API and a worker for the debug kinds (the fuzzer's other tasks wait in line, so
    the run does not render its random 2048-pixel pictures on this 2-core machine)."""
    webhooks = {
        "GENQUEUE_WEBHOOKS__SECRET": "whsec_" + base64.b64encode(b"fuzz" * 8).decode(),
        "GENQUEUE_WEBHOOKS__ALLOW_PRIVATE": "true",  # fuzz_hooks.WEBHOOK_URL is loopback
    }
    cluster = Cluster(tmp_path / "cluster", webhooks)
    (tmp_path / "cluster").mkdir()
    try:
        cluster.start_api()
        cluster.start_worker(queues="debug", concurrency=2)
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.timeout(240)
def test_schemathesis_finds_nothing(fuzzed: Cluster, tmp_path: Path) -> None:
    run = fuzz(fuzzed.url, tmp_path, seed=SEED, max_examples=MAX_EXAMPLES, timeout_s=200)
    assert "Tested:" in run.summary, run.output[-6000:]
    assert run.returncode == 0, run.output[-20000:]
