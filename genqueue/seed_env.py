"""The environment names of the systems genqueue replaces (``../shared/seeds``), so their
deployments' ``.env`` files and variables keep working unchanged.

Each name set (in the environment or ``.env``, unprefixed) becomes a default below the
``GENQUEUE_*`` settings, which win over it:

- seeds 001, 002, 003: ``REDIS_HOST``, ``REDIS_PORT``, ``REDIS_DB``, ``REDIS_PASSWORD`` ->
  store and broker ``redis://``;
- seed 000: ``RABBITMQ_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``, ``_VHOST`` -> broker
  ``amqp://``, ``RABBITMQ_TASK_QUEUE`` -> the RabbitMQ name of queue ``image``
  (``amqp.queue_names``); seed 004: ``RABBITMQ_URL`` -> broker;
- seed 003: ``TENCENTCLOUD_SECRET_ID``, ``TENCENTCLOUD_SECRET_KEY``, ``VOD_SUBAPP_ID`` ->
  ``video.*``; ``DEFAULT_THRESHOLD`` ... ``RECOVERY_INTERVAL`` -> ``limit_defaults.*``;
- seed 002: ``COMPUTE_WORKERS`` -> ``worker.concurrency``;
- seed 004: ``MAX_CONCURRENT_TASKS``, ``QUEUE_PREFETCH_COUNT`` -> ``worker.concurrency``,
  ``worker.prefetch``; ``HEARTBEAT_INTERVAL`` -> ``heartbeat_s`` (and ``lease_s``: three).

With RabbitMQ named and no Redis, the store stays the embedded SQLite file (one machine);
set ``GENQUEUE_STORE`` to PostgreSQL or Redis for several.

Each name may instead come from a file: ``REDIS_PASSWORD_FILE``, ``RABBITMQ_PASSWORD_FILE``,
``RABBITMQ_URL_FILE``, ``TENCENTCLOUD_SECRET_KEY_FILE``, ... (``genqueue/secret_files.py``).
``APP_HOST``/``APP_PORT`` (seed 000) are read by ``genqueue api`` and ``genqueue up``
(genqueue/cli.py).
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from genqueue.secret_files import FileValuesSource, variables_of

# Seed 003's limiter names -> LimitSettings fields.
SEED_LIMIT_NAMES = {
    "default_threshold": "start",
    "max_threshold": "max",
    "min_threshold": "min",
    "threshold_decrease": "decrease",
    "threshold_increase": "increase",
    "recovery_interval": "recovery_interval_s",
}


class SeedEnv(BaseSettings):
    """The seeds' variables as they are set; validation is left to the genqueue settings
    they feed (so an error names the genqueue field and the value)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    default_threshold: str | None = None
    max_threshold: str | None = None
    min_threshold: str | None = None
    threshold_decrease: str | None = None
    threshold_increase: str | None = None
    recovery_interval: str | None = None
    redis_host: str | None = None
    redis_port: str | None = None
    redis_db: str | None = None
    redis_password: str | None = None
    rabbitmq_url: str | None = None
    rabbitmq_host: str | None = None
    rabbitmq_port: str | None = None
    rabbitmq_user: str | None = None
    rabbitmq_password: str | None = None
    rabbitmq_vhost: str | None = None
    rabbitmq_task_queue: str | None = None
    tencentcloud_secret_id: str | None = None
    tencentcloud_secret_key: str | None = None
    vod_subapp_id: str | None = None
    compute_workers: str | None = None
    max_concurrent_tasks: str | None = None
    queue_prefetch_count: str | None = None
    heartbeat_interval: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # REDIS_PASSWORD_FILE and the like, as for the GENQUEUE_* names (settings.py).
        env, dotenv = variables_of(env_settings), variables_of(dotenv_settings)
        return (
            init_settings,
            env_settings,
            FileValuesSource(settings_cls, env),
            dotenv_settings,
            FileValuesSource(settings_cls, dotenv, above=[env]),
        )

    def redis_url(self) -> str | None:
        if self.redis_host is None:
            return None
        auth = f":{quote(self.redis_password, safe='')}@" if self.redis_password else ""
        return f"redis://{auth}{self.redis_host}:{self.redis_port or 6379}/{self.redis_db or 0}"

    def amqp_url(self) -> str | None:
        if self.rabbitmq_url:
            return self.rabbitmq_url
        if self.rabbitmq_host is None:
            return None
        user = quote(self.rabbitmq_user or "guest", safe="")
        password = quote(self.rabbitmq_password or "guest", safe="")
        vhost = quote(self.rabbitmq_vhost or "/", safe="")
        return f"amqp://{user}:{password}@{self.rabbitmq_host}:{self.rabbitmq_port or 5672}/{vhost}"

    def values(self) -> dict[str, Any]:
        """Settings values (nested as ``Settings`` fields) from the names that are set."""
        out: dict[str, Any] = {}
        limits = {
            field: getattr(self, name)
            for name, field in SEED_LIMIT_NAMES.items()
            if getattr(self, name) is not None
        }
        if limits:
            out["limit_defaults"] = limits
        redis, amqp = self.redis_url(), self.amqp_url()
        if redis:
            out["store"] = redis
        if amqp or redis:
            out["broker"] = amqp or redis
        if self.rabbitmq_task_queue:
            out["amqp"] = {"queue_names": {"image": self.rabbitmq_task_queue}}
        video = {
            "secret_id": self.tencentcloud_secret_id,
            "secret_key": self.tencentcloud_secret_key,
            "sub_app_id": self.vod_subapp_id,
        }
        if video := {k: v for k, v in video.items() if v is not None}:
            out["video"] = video
        worker = {
            "concurrency": self.max_concurrent_tasks or self.compute_workers,
            "prefetch": self.queue_prefetch_count,
        }
        if worker := {k: v for k, v in worker.items() if v is not None}:
            out["worker"] = worker
        if self.heartbeat_interval is not None:
            out["heartbeat_s"] = self.heartbeat_interval
            with contextlib.suppress(ValueError):  # heartbeat_s reports a bad value
                out["lease_s"] = 3 * float(self.heartbeat_interval)
        return out
