"""Passwords out of everything genqueue shows: logs, error messages, API responses, CLI output.

Backend URLs carry their credentials (``redis://:pw@host``, ``amqp://user:pw@host``,
``postgresql://u:pw@h/db?sslpassword=...``), and a URL travels: into an exception message,
then a log line, a ``/health`` body, a worker's ``reason`` in the registry. Two functions do
all the hiding, so every place that shows a URL or an error uses the same rule:

- :func:`redact_url` for a URL genqueue holds (``redis://:***@host:6379/0``);
- :func:`redact_text` for any text that may contain URLs (an exception from a driver, a
  formatted log record): every ``scheme://user:password@`` and every secret query
  parameter in it is masked.

:class:`RedactingFormatter` applies :func:`redact_text` to every log line, traceback included.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Query parameters that hold a secret rather than a path or an option (asyncpg's
# sslpassword, redis-py's password and ssl_password, a token or API key).
SECRET_PARAMS = frozenset(
    {"password", "passwd", "pass", "sslpassword", "ssl_password", "secret", "token", "api_key"}
)
# scheme://user:password@ inside any text; the password runs to the last '@' of the
# authority (an unescaped '@' in a password is read that way by urlsplit too).
_USERINFO = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/?#@\s'\"]*:)(?P<password>[^/?#\s'\"]*)@"
)
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:" + "|".join(sorted(SECRET_PARAMS)) + r")=)(?P<value>[^&#\s'\"]*)",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """``url`` with its password (and secret query parameters) replaced by ``***``; a URL
    without them comes back unchanged."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL urlsplit can read (a bad port): mask what looks secret
        return redact_text(url)
    if password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        url = urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", url)


def redact_text(text: str) -> str:
    """``text`` with the password of every URL in it, and secret query values, masked."""
    text = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line (message, arguments, traceback) is passed through
    :func:`redact_text`: a driver's exception that quotes a URL cannot leak it to a log."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))
