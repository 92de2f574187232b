"""The one reconnecting AMQP connection of a broker, and mapping its failures to our errors."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aio_pika
import aiormq
import aiormq.abc
from aio_pika.robust_connection import RobustConnection

from genqueue.errors import BackendUnavailableError, ConfigError
from genqueue.redact import redact_text

FIRST_RETRY_S = 0.5
# What a lost connection, a closed channel or a refused socket raise.
TRANSIENT = (aiormq.exceptions.AMQPError, ConnectionError, OSError, RuntimeError, TimeoutError)


class BackoffConnection(RobustConnection):
    """aio-pika's RobustConnection, with the pause between reconnect attempts growing with the
    outage (half of it, with a per-process jitter) from 0.5 s up to ``max_pause_s``.

    A subclass because aio-pika reads ``reconnect_interval`` before each attempt and has no
    other hook; the value is a pure function of the time, so extra reads are harmless.
    """

    max_pause_s = 5.0
    _down_since: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._jitter = random.uniform(0.8, 1.2)
        super().__init__(*args, **kwargs)
        self.close_callbacks.add(self._went_down)
        self.reconnect_callbacks.add(self._came_back)

    @property
    def reconnect_interval(self) -> float:
        if self._down_since is None:
            return FIRST_RETRY_S
        outage_s = time.monotonic() - self._down_since
        return min(self.max_pause_s, max(FIRST_RETRY_S, outage_s / 2 * self._jitter))

    @reconnect_interval.setter
    def reconnect_interval(self, value: float) -> None:
        """Set by RobustConnection from the URL; the schedule above replaces it."""

    def _went_down(self, *_: object) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()

    def _came_back(self, *_: object) -> None:
        self._down_since = None

    @property
    def server_version(self) -> str:
        """``3.10.8``; empty when not connected."""
        return str(self._server_property("version"))

    @property
    def server_product(self) -> str:
        return str(self._server_property("product") or "RabbitMQ")

    def _server_property(self, name: str) -> object:
        transport = self.transport
        if transport is None:
            return ""
        value = transport.connection.server_properties.get(name, "")
        return value.decode() if isinstance(value, bytes) else value

    def amqp(self) -> aiormq.abc.AbstractConnection:
        """The live aiormq connection; ``BackendUnavailableError`` while reconnecting."""
        transport = self.transport
        if transport is None or transport.connection.is_closed or not self.connected.is_set():
            raise BackendUnavailableError("RabbitMQ: not connected (reconnecting)")
        return transport.connection

    async def amqp_ready(self, timeout_s: float | None) -> aiormq.abc.AbstractConnection:
        """The live aiormq connection, waiting up to ``timeout_s`` (None: for ever) for it."""
        async with asyncio.timeout(timeout_s):
            while True:
                await self.connected.wait()
                try:
                    return self.amqp()
                except BackendUnavailableError:
                    await asyncio.sleep(0.05)  # connected flag set before the transport


async def connect(url: str, timeout_s: float, max_pause_s: float) -> BackoffConnection:
    """Open the connection (failing fast if the server cannot be reached now)."""
    try:
        connection = await aio_pika.connect_robust(
            url, timeout=timeout_s, connection_class=BackoffConnection
        )
    except (
        aiormq.exceptions.AuthenticationError,
        aiormq.exceptions.ProbableAuthenticationError,
    ) as exc:
        raise ConfigError(
            redact_text(f"RabbitMQ refused the login ({exc});")
            + " check the user, password and vhost in GENQUEUE_BROKER"
        ) from exc
    except TRANSIENT as exc:
        raise BackendUnavailableError(redact_text(f"RabbitMQ: cannot connect: {exc!r}")) from exc
    connection.max_pause_s = max_pause_s
    return connection
