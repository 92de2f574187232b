"""``<NAME>_FILE``: settings and the seeds' names read from files (genqueue/secret_files.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genqueue.errors import ConfigError
from genqueue.settings import load_settings
from genqueue.supervise import EX_CONFIG


def secret(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    path.chmod(0o600)
    return str(path)


def test_store_and_broker_urls_come_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = "postgresql://app:s3cret@db.internal:5432/jobs?schema=gq"
    monkeypatch.setenv("GENQUEUE_STORE_FILE", secret(tmp_path, "store", store + "\n"))
    monkeypatch.setenv("GENQUEUE_BROKER_FILE", secret(tmp_path, "broker", "amqp://u:p@mq/\r\n"))
    s = load_settings()
    assert s.store == store  # the trailing newline is not part of the value
    assert s.broker == "amqp://u:p@mq/"


def test_nested_secrets_and_json_fields_come_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENQUEUE_VIDEO__SECRET_KEY_FILE", secret(tmp_path, "key", "k3y\n"))
    monkeypatch.setenv("GENQUEUE_VIDEO__SECRET_ID", "AKID-plain")  # a sibling, set directly
    limits = secret(tmp_path, "limits", '{"video-cloud": {"max": 8}}\n')
    monkeypatch.setenv("GENQUEUE_LIMITS_FILE", limits)
    s = load_settings()
    assert s.video.secret_key.get_secret_value() == "k3y"
    assert s.video.secret_id.get_secret_value() == "AKID-plain"
    assert s.limit_for("video-cloud").max == 8


def test_the_seeds_passwords_come_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_HOST", "cache.internal")
    monkeypatch.setenv("REDIS_PASSWORD_FILE", secret(tmp_path, "redis", "p@ss:word\n"))
    monkeypatch.setenv("RABBITMQ_HOST", "mq.internal")
    monkeypatch.setenv("RABBITMQ_PASSWORD_FILE", secret(tmp_path, "rabbit", "r/pw\n"))
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY_FILE", secret(tmp_path, "tc", "tc-key\n"))
    s = load_settings()
    assert s.store == "redis://:p%40ss%3Aword@cache.internal:6379/0"
    assert s.broker == "amqp://guest:r%2Fpw@mq.internal:5672/%2F"
    assert s.video.secret_key.get_secret_value() == "tc-key"


def test_a_file_in_the_environment_wins_over_a_value_in_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GENQUEUE_STORE=redis://from-dotenv:6379/0\n")
    monkeypatch.setenv("GENQUEUE_STORE_FILE", secret(tmp_path, "store", "redis://from-file/0"))
    assert load_settings().store == "redis://from-file/0"


def test_dotenv_may_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = secret(tmp_path, "store", "redis://:pw@from-file/0\n")
    (tmp_path / ".env").write_text(f"GENQUEUE_STORE_FILE={path}\n")
    assert load_settings().store == "redis://:pw@from-file/0"


def test_a_missing_file_is_a_configuration_error_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENQUEUE_BROKER_FILE", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match=r"GENQUEUE_BROKER_FILE: cannot read .*nope"):
        load_settings()


def test_an_unreadable_file_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_HOST", "h")
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(tmp_path))  # a directory
    with pytest.raises(ConfigError, match="REDIS_PASSWORD_FILE: cannot read"):
        load_settings()


def test_both_the_value_and_its_file_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENQUEUE_STORE", "sqlite:///x.db")
    monkeypatch.setenv("GENQUEUE_STORE_FILE", secret(tmp_path, "store", "sqlite:///y.db"))
    with pytest.raises(ConfigError, match="set GENQUEUE_STORE or GENQUEUE_STORE_FILE, not both"):
        load_settings()


def test_a_json_field_whose_file_is_not_json_names_the_variable_not_the_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENQUEUE_FAIR_WEIGHTS_FILE", secret(tmp_path, "w", "hunter2"))
    with pytest.raises(ConfigError, match="GENQUEUE_FAIR_WEIGHTS_FILE: the file is not JSON") as e:
        load_settings()
    assert "hunter2" not in str(e.value)


def test_file_variables_of_no_setting_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENQUEUE_NO_SUCH_THING_FILE", str(tmp_path / "never-read"))
    monkeypatch.setenv("SOME_OTHER_TOOL_FILE", str(tmp_path / "never-read"))
    assert load_settings(data_dir=tmp_path).store.startswith("sqlite:")


@pytest.mark.parametrize("command", [["worker"], ["api", "--port", "1"]])
def test_the_cli_reports_a_missing_secret_file_in_one_line_with_exit_78(
    tmp_path: Path, command: list[str]
) -> None:
    env = {
        **os.environ,
        "GENQUEUE_DATA_DIR": str(tmp_path),
        "GENQUEUE_STORE_FILE": str(tmp_path / "missing-store-url"),
    }
    run = subprocess.run(
        [sys.executable, "-m", "genqueue", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == EX_CONFIG, run.stdout + run.stderr
    assert "configuration error: GENQUEUE_STORE_FILE: cannot read" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
