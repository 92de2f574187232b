"""Redaction: passwords masked in URLs and in any text that quotes them (genqueue/redact.py)."""

from __future__ import annotations

import logging

import pytest

from genqueue.redact import RedactingFormatter, redact_text, redact_url
from genqueue.settings import load_settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@127.0.0.1:6379/0?prefix=x", "redis://:***@127.0.0.1:6379/0?prefix=x"),
        ("amqps://guest:p%40ss@mq:5671/%2F?cafile=/ca.pem", "amqps://guest:***@mq:5671/%2F?cafile=/ca.pem"),
        ("postgresql://u:p@ss@db/jobs?sslpassword=k&sslmode=require", "postgresql://u:***@db/jobs?sslpassword=***&sslmode=require"),
        ("rediss://h:6380/0?password=zz&ssl_ca_certs=/ca.pem", "rediss://h:6380/0?password=***&ssl_ca_certs=/ca.pem"),
        ("postgresql://u@db/jobs", "postgresql://u@db/jobs"),
        ("sqlite:///data/genqueue.db", "sqlite:///data/genqueue.db"),
    ],
)  # fmt: skip
def test_a_url_shows_everything_but_its_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_urls_quoted_in_a_message_are_masked() -> None:
    text = "cannot connect to 'amqp://app:hunter2@mq:5672/' (or redis://:s3cret@h:1/0?token=t0k )"
    masked = redact_text(text)
    assert (
        masked == "cannot connect to 'amqp://app:***@mq:5672/' (or redis://:***@h:1/0?token=*** )"
    )


def test_log_lines_and_tracebacks_are_masked() -> None:
    formatter = RedactingFormatter("%(message)s")
    try:
        raise RuntimeError("lost redis://:s3cret@cache:6379/0")
    except RuntimeError as exc:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "store %s", (exc,), None)
        record.exc_info = (type(exc), exc, exc.__traceback__)
    line = formatter.format(record)
    assert "s3cret" not in line
    assert line.startswith("store lost redis://:***@cache:6379/0\nTraceback")
    assert line.endswith("RuntimeError: lost redis://:***@cache:6379/0")


def test_the_settings_repr_shows_no_password() -> None:
    settings = load_settings(store="postgresql://u:s3cret@db/jobs", broker="amqp://u:s3cret@mq/")
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)
    assert "postgresql://u:***@db/jobs" in repr(settings)
    assert settings.store == "postgresql://u:s3cret@db/jobs"  # the value itself is intact
