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


def test_limits_default_to_the_seed_rule() -> None:
    rule = load_settings().limit_for("video-cloud")
    assert (rule.initial_limit, rule.max, rule.min) == (12, 12, 2)
    assert (rule.decrease_mode, rule.decrease, rule.increase) == ("step", 2, 1)
    assert rule.recovery_interval_s == 60


def test_genqueue_limits_override_one_resource_over_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "GENQUEUE_LIMITS", '{"video-cloud": {"max": 8, "recovery_interval_s": "5s"}}'
    )
    monkeypatch.setenv("GENQUEUE_LIMIT_DEFAULTS__DECREASE_MODE", "factor")
    s = load_settings()
    cloud = s.limit_for("video-cloud")
    assert (cloud.max, cloud.initial_limit, cloud.recovery_interval_s) == (8, 8, 5)
    assert (cloud.decrease_mode, cloud.min) == ("factor", 2)  # the rest from the defaults
    other = s.limit_for("image-cloud")
    assert (other.max, other.recovery_interval_s, other.decrease_mode) == (12, 60, "factor")


def test_the_seed_environment_names_set_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DEFAULT_THRESHOLD": "6",
        "MAX_THRESHOLD": "10",
        "MIN_THRESHOLD": "1",
        "THRESHOLD_DECREASE": "3",
        "THRESHOLD_INCREASE": "2",
        "RECOVERY_INTERVAL": "30",
    }.items():
        monkeypatch.setenv(name, value)
    rule = load_settings().limit_defaults
    assert (rule.initial_limit, rule.max, rule.min) == (6, 10, 1)
    assert (rule.decrease, rule.increase, rule.recovery_interval_s) == (3, 2, 30)
    monkeypatch.setenv("GENQUEUE_LIMIT_DEFAULTS__MAX", "9")  # genqueue's own name wins
    assert load_settings().limit_defaults.max == 9


def test_the_seed_names_are_read_from_dotenv_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("MAX_THRESHOLD=20\nDEFAULT_THRESHOLD=16\n")
    monkeypatch.chdir(tmp_path)
    rule = load_settings().limit_defaults
    assert (rule.max, rule.initial_limit) == (20, 16)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ('{"video-cloud": {"min": 5, "max": 3}}', r"video-cloud\n.*min \(5\) must be at most max"),
        ('{"video-cloud": {"start": 20}}', r"video-cloud\n.*start \(20\) must be between"),
        ('{"video-cloud": {"factor": 1.5}}', r"video-cloud\.factor"),
        ('{"video-cloud": {"decrease_mode": "halve"}}', r"video-cloud\.decrease_mode"),
        ('{"video-cloud": {"recovery_interval_s": 0}}', r"video-cloud\.recovery_interval_s"),
        ('{"video-cloud": {"min": 0}}', r"video-cloud\.min"),
    ],
)
def test_invalid_limits_are_rejected_naming_resource_and_field(
    monkeypatch: pytest.MonkeyPatch, limits: str, message: str
) -> None:
    monkeypatch.setenv("GENQUEUE_LIMITS", limits)
    with pytest.raises(ValidationError, match=message):
        load_settings()


def test_an_invalid_seed_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIN_THRESHOLD", "20")
    with pytest.raises(ValidationError, match=r"limit_defaults\n.*min \(20\) must be at most"):
        load_settings()


def test_the_seeds_redis_names_point_store_and_broker_at_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"REDIS_HOST": "cache", "REDIS_PORT": "6380", "REDIS_DB": "2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REDIS_PASSWORD", "p@ss/word")
    settings = load_settings()
    assert settings.store == settings.broker == "redis://:p%40ss%2Fword@cache:6380/2"
    monkeypatch.setenv("GENQUEUE_STORE", "postgresql://db/test")  # genqueue's own name wins
    assert load_settings().store == "postgresql://db/test"


def test_the_seeds_rabbitmq_names_point_the_broker_at_rabbitmq(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RABBITMQ_HOST", "mq")
    monkeypatch.setenv("RABBITMQ_USER", "wave")
    monkeypatch.setenv("RABBITMQ_TASK_QUEUE", "image.generate.task")
    settings = load_settings(data_dir=tmp_path)
    assert settings.broker == "amqp://wave:guest@mq:5672/%2F"
    assert settings.amqp.queue_names == {"image": "image.generate.task"}
    assert settings.store.startswith("sqlite:///")  # one machine until a shared store is set
    monkeypatch.setenv("RABBITMQ_URL", "amqp://u:p@other:5672/easysight")  # seed 004's
    assert load_settings().broker == "amqp://u:p@other:5672/easysight"


def test_the_seeds_cloud_and_worker_names_take_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TENCENTCLOUD_SECRET_ID": "id-1",
        "TENCENTCLOUD_SECRET_KEY": "key-1",
        "VOD_SUBAPP_ID": "1320866336",
        "MAX_CONCURRENT_TASKS": "3",
        "QUEUE_PREFETCH_COUNT": "10",
        "HEARTBEAT_INTERVAL": "30",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    video = settings.video
    assert video.secret_id.get_secret_value() == "id-1" and video.sub_app_id == 1320866336
    assert video.secret_key.get_secret_value() == "key-1"
    assert (settings.worker.concurrency, settings.worker.prefetch) == (3, 10)
    assert (settings.heartbeat_s, settings.lease_s) == (30, 90)
    monkeypatch.delenv("MAX_CONCURRENT_TASKS")
    monkeypatch.setenv("COMPUTE_WORKERS", "4")  # seed 002's name
    assert load_settings().worker.concurrency == 4
