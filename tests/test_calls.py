"""The client's calls as data: deadlines on the wire, a batch's schedule as its tasks' default."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from genqueue.calls import Schedule, auth_headers, batch_item, limit, submit
from genqueue.errors import ConfigError

NOON = datetime(2030, 1, 1, 12, tzinfo=UTC)


def test_a_schedule_sends_only_what_is_given_with_times_in_iso_8601() -> None:
    assert Schedule().fields() == {}
    schedule = Schedule(run_at=NOON, cancel_after_s=5)
    assert schedule.fields() == {"run_at": "2030-01-01T12:00:00+00:00", "cancel_after_s": 5}
    call = submit("debug.echo", None, None, 0, None, None, Schedule(delay_s=2, start_by=NOON))
    assert call.kwargs["json"] == {
        "kind": "debug.echo",
        "payload": {},
        "priority": 0,
        "delay_s": 2,
        "start_by": "2030-01-01T12:00:00+00:00",
    }


def test_a_batch_schedule_is_a_default_a_task_overrides() -> None:
    batch = Schedule(delay_s=30, start_by=NOON, cancel_after_s=9)
    assert batch_item({"kind": "k"}, batch) == {
        "kind": "k",
        "delay_s": 30,
        "start_by": "2030-01-01T12:00:00+00:00",
        "cancel_after_s": 9,
    }
    # A start of its own replaces the batch's (run_at and delay_s do not go together).
    own = batch_item({"kind": "k", "run_at": NOON, "cancel_after_s": 1}, batch)
    assert own == {
        "kind": "k",
        "run_at": "2030-01-01T12:00:00+00:00",
        "start_by": "2030-01-01T12:00:00+00:00",
        "cancel_after_s": 1,
    }


def test_a_resource_name_is_one_path_segment() -> None:
    assert limit("video-cloud").url == "/v1/limits/video-cloud"
    assert limit("a/b c").url == "/v1/limits/a%2Fb%20c"


def test_the_api_key_comes_from_the_file_genqueue_api_key_file_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GENQUEUE_API_KEY", raising=False)
    secret = tmp_path / "key"
    secret.write_text("gq_from_a_file\n")
    monkeypatch.setenv("GENQUEUE_API_KEY_FILE", str(secret))
    assert auth_headers(None) == {"Authorization": "Bearer gq_from_a_file"}
    assert auth_headers("gq_given") == {"Authorization": "Bearer gq_given"}  # given wins
    monkeypatch.setenv("GENQUEUE_API_KEY", "gq_env")
    with pytest.raises(ConfigError, match="not both"):
        auth_headers(None)
    monkeypatch.delenv("GENQUEUE_API_KEY")
    monkeypatch.setenv("GENQUEUE_API_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="GENQUEUE_API_KEY_FILE: cannot read"):
        auth_headers(None)
