"""Schemathesis, driven by /openapi.json, against a real API and worker on the embedded
SQLite store finds nothing: no 5xx, no undocumented status, header or media type, no body
unlike its schema, no valid request refused, no invalid one taken, an ``Allow`` on every 405.

A short deterministic run (fixed seed, few examples per operation); ``make fuzz`` runs the
long one. What is left out, and why, is in tests/openapi_fuzz.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Cluster
from tests.openapi_fuzz import fuzz, fuzzed_cluster

pytestmark = pytest.mark.system

SEED = 20261
MAX_EXAMPLES = 8


@pytest.fixture
def fuzzed(tmp_path: Path) -> Iterator[Cluster]:
    cluster = fuzzed_cluster(tmp_path / "cluster")
    yield cluster
    cluster.stop()


@pytest.mark.timeout(240)
def test_schemathesis_finds_nothing(fuzzed: Cluster, tmp_path: Path) -> None:
    run = fuzz(fuzzed.url, tmp_path, seed=SEED, max_examples=MAX_EXAMPLES, timeout_s=200)
    assert "Tested:" in run.summary, run.output[-6000:]
    assert run.returncode == 0, run.output[-20000:]
