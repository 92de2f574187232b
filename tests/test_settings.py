"""Settings: environment, durations, the data-dir defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from genqueue.settings import load_settings, parse_duration_s


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("1.5s", 1.5),
        ("250ms", 0.25),
        ("30m", 1800.0),
        ("24h", 86400.0),
        ("7d", 604800.0),
        (12, 12.0),
    ],
)
def test_durations_accept_units(text: str | int, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


def test_bad_duration_names_the_value() -> None:
    with pytest.raises(ValueError, match="not a duration: '3 weeks'"):
        parse_duration_s("3 weeks")


def test_data_dir_places_the_database_and_artifacts(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    assert s.store == s.broker == f"sqlite:///{tmp_path}/genqueue.db"
    assert s.artifacts == f"{tmp_path}/artifacts"
    assert s.retention == 86400.0


def test_environment_and_nested_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENQUEUE_RETENTION", "2h")
    monkeypatch.setenv("GENQUEUE_WORKER__CONCURRENCY", "7")
    monkeypatch.setenv("GENQUEUE_STORE", "sqlite:///elsewhere.db")
    s = load_settings()
    assert (s.retention, s.worker.concurrency) == (7200.0, 7)
    assert s.broker == "sqlite:///elsewhere.db"  # the broker follows the store by default


def test_heartbeat_must_fit_twice_in_the_lease() -> None:
    with pytest.raises(ValidationError, match="heartbeat_s"):
        load_settings(lease_s=2, heartbeat_s=1.5)
