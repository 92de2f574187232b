"""Every knob, typed and grouped, read from ``GENQUEUE_*`` variables and an optional ``.env``.

Built explicitly by :func:`load_settings` and passed down; nothing is read at import time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources import DotenvType

from genqueue.models import EXPIRED_KEPT_S
from genqueue.redact import redact_url
from genqueue.secret_files import FileValuesSource, variables_of

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration_s(value: Any) -> float:
    """Accept seconds as a number or a string with a unit: ``90``, ``1.5s``, ``30m``, ``24h``."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"not a duration: {value!r} (examples: 90, 30s, 15m, 24h, 7d)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration_s), Field(ge=0)]


class WorkerSettings(BaseModel):
    """Defaults for worker processes; the CLI flags override them."""

    concurrency: int = Field(4, ge=1, le=1024)
    prefetch: int = Field(4, ge=0, le=10_000)
    process_pool: int = Field(2, ge=1, le=64)
    shutdown_grace_s: Duration = 30.0
    # Set up every kind's resources (models, clients) and start the process pool at start,
    # rather than on first use: the first task does not wait for a model load.
    preload: bool = False
    # Named capacities (--slots gpu=1,cpu=4) that kinds declaring slots={"gpu": 1} take per
    # run; a worker serves no queue whose kinds need a capacity it lacks.
    slots: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    # Models (Kind.models) a worker holds loaded at once, least recently used evicted first.
    warm_models: int = Field(2, ge=1, le=1000)
    # How long a task whose model another worker holds warm is left to that worker before any
    # worker takes it (warm-model affinity, genqueue/worker/affinity.py); 0 turns it off.
    affinity_wait_s: Duration = 5.0


class AmqpSettings(BaseModel):
    """RabbitMQ broker options (``GENQUEUE_AMQP__*``); connection and TLS come from the URL
    (``amqps://...?cafile=ca.pem&certfile=c.pem&keyfile=k.pem``, as aio-pika reads them)."""

    # auto: classic priority queues, the only RabbitMQ queues with strict priority order (see
    # genqueue/backends/amqp). quorum: replicated, but priorities are ignored (3.x) or coarse (4.x).
    queue_type: Literal["auto", "quorum", "classic"] = "auto"
    # genqueue queue -> RabbitMQ queue name, e.g. {"image": "image.generate.task"} for seed 000;
    # queues not listed are named "<prefix>.<queue>" (prefix from ?prefix=, default genqueue).
    queue_names: dict[str, str] = Field(default_factory=dict)
    # x-max-priority of classic queues; genqueue's -1000..1000 is mapped onto 0..max_priority
    # with 0 in the middle, so it takes at least 2 to keep negative < 0 < positive.
    max_priority: int = Field(10, ge=1, le=255)
    # Longest pause between two reconnect attempts (the pause grows with the outage).
    reconnect_max_s: Duration = 5.0
    # How long connect, publish (waiting for a reconnection, then for the broker's confirms),
    # ping and status may take before the broker counts as unavailable (the API answers 503).
    timeout_s: Duration = 5.0


class VideoSettings(BaseModel):
    """``video.generate`` with ``provider="cloud"`` (``GENQUEUE_VIDEO__*``): a Tencent Cloud VOD
    AIGC endpoint and its credentials, named after seed 003's ``TENCENTCLOUD_SECRET_ID``,
    ``TENCENTCLOUD_SECRET_KEY`` and ``VOD_SUBAPP_ID``. ``python -m genqueue.standins.tencent_vod``
    is a local stand-in to point ``endpoint`` at for demos and tests."""

    endpoint: str = "https://vod.tencentcloudapi.com"
    secret_id: SecretStr = SecretStr("")
    secret_key: SecretStr = SecretStr("")
    sub_app_id: int | None = Field(None, ge=1)
    region: str = ""
    # TC3 signing scope and API version of the VOD AIGC actions (CreateAigcVideoTask, ...).
    service: str = "vod"
    api_version: str = "2018-07-17"
    model_name: str = "Hailuo"
    model_version: str = "2.3"
    default_duration_s: int = Field(6, ge=1, le=10)
    default_resolution: Literal["720p", "768p", "1080p"] = "720p"
    poll_interval_s: Duration = 5.0
    request_timeout_s: Duration = 30.0
    # Wait after a rate-limit answer that does not say how long (no Retry-After).
    rate_limit_delay_s: Duration = 10.0
    max_download_bytes: int = Field(512 * 1024 * 1024, ge=1024)


class DiagnosisSettings(BaseModel):
    """Defaults of ``image.diagnose`` (``GENQUEUE_DIAGNOSIS__*``); a task's ``thresholds``
    override them one by one. Each threshold's unit and the reason for its value are in the
    docstring of its check in ``genqueue/handlers/diagnose/checks.py``."""

    blur: float = Field(15.0, ge=0)  # Laplacian variance of the normalised frame, below
    dark: float = Field(40.0, ge=0, le=255)  # mean luma, below
    bright: float = Field(215.0, ge=0, le=255)  # mean luma, above
    contrast: float = Field(0.2, ge=0, le=1)  # luma spread / exposure headroom, below
    colour_cast: float = Field(30.0, ge=0)  # mean chroma offset in CIELAB units, above
    noise: float = Field(10.0, ge=0)  # estimated noise sigma in grey levels, above
    signal_loss: float = Field(0.9, ge=0, le=1)  # share of the frame within one grey band, above
    occlusion: float = Field(0.35, ge=0, le=1)  # largest flat region's share of the frame, above
    frozen: float = Field(0.05, ge=0)  # mean thumbnail difference to the last frame, below
    faces: float = Field(0.0, ge=0)  # faces tolerated (alerts only with alert_on_faces)
    people: float = Field(0.0, ge=0)  # people tolerated (alerts only with alert_on_people)
    alert_on_faces: bool = False
    alert_on_people: bool = False
    # Frames are analysed with their long side at most this (detectors and thresholds assume
    # ~640); noise is measured at full resolution, where it lives.
    analysis_side: int = Field(640, ge=160, le=2048)


class FeatureSettings(BaseModel):
    """``feature.extract`` and the ``/v1/collections`` indexes (``GENQUEUE_FEATURES__*``)."""

    # The ONNX graph ``make models`` exports; unset: <sys.prefix>/share/genqueue/models/...
    model_path: Path | None = None
    # Where each API process keeps its collections (definition, FAISS index, id map);
    # unset: <data_dir>/collections. Several API machines: a shared folder (NFS).
    index_dir: Path | None = None
    # A collection that always exists (made on first use), so clients need no setup step.
    default_collection: str = "default"
    # Images per ONNX run; a bulk ingest puts ``ingest_images_per_task`` (at most that) in
    # each task, up to ``ingest_max_items`` images per request.
    max_batch: int = Field(32, ge=1, le=256)
    ingest_images_per_task: int = Field(8, ge=1, le=256)
    ingest_max_items: int = Field(10_000, ge=1)
    # ONNX Runtime intra-op threads per process; 0: one per CPU, at most 4.
    intra_op_threads: int = Field(0, ge=0, le=64)
    # An index that changed is written to disk at most this often (and on shutdown); a save
    # writes the whole index (512 MB per 100 000 vectors), so not too often.
    save_interval_s: Duration = 10.0


class CompatSettings(BaseModel):
    """The drop-in adapters for the systems genqueue replaces (``genqueue/api/compat``), each
    mounted unless switched off: ``GENQUEUE_COMPAT__AIGC=false``."""

    waveclothes: bool = True  # seed 000: image generation over RabbitMQ
    rqbatch: bool = True  # seed 001: batch image generation over Redis + RQ
    futu: bool = True  # seed 002: feature extraction + FAISS over Redis
    aigc: bool = True  # seed 003: AIGC video over Redis Streams + AIMD
    easysight: bool = True  # seed 004: camera diagnosis over RabbitMQ


class LimitSettings(BaseModel):
    """The AIMD rule of one upstream resource's shared concurrency limit (``genqueue/limiter.py``).

    Defaults are seed 003's (start 12, max 12, min 2, -2 on a limit error, +1 per quiet 60 s);
    ``GENQUEUE_LIMIT_DEFAULTS__*`` or the seed's own names (``DEFAULT_THRESHOLD``,
    ``MAX_THRESHOLD``, ``MIN_THRESHOLD``, ``THRESHOLD_DECREASE``, ``THRESHOLD_INCREASE``,
    ``RECOVERY_INTERVAL``) change them for every resource, ``GENQUEUE_LIMITS`` per resource.
    """

    model_config = ConfigDict(frozen=True)

    # None: start at max, which is what the seed does (12 and 12) and lets an override that
    # only lowers max keep a valid start.
    start: float | None = Field(None, ge=1)
    # A floor of at least one call, so a resource cut to its floor still makes progress.
    min: float = Field(2.0, ge=1)
    max: float = Field(12.0, ge=1)
    # step: limit - decrease (the seed); factor: limit * factor (TCP CUBIC and AWS use 0.7).
    decrease_mode: Literal["step", "factor"] = "step"
    decrease: float = Field(2.0, gt=0)
    factor: float = Field(0.7, gt=0, lt=1)
    increase: float = Field(1.0, gt=0)
    recovery_interval_s: Annotated[Duration, Field(gt=0)] = 60.0
    # The step back up to the limit the upstream last refused waits this many intervals:
    # that level failed once, so probe it less often (1: the seed's even pace). Halves the
    # limit errors of a steady upstream; steps past it go at the usual pace.
    reprobe_factor: float = Field(2.0, ge=1)
    # A call started after a cut may still see the upstream's old window of errors; this
    # debounces cuts beyond the epoch rule (the seed, with one process, had neither).
    min_cut_gap_s: Duration = 1.0

    @model_validator(mode="after")
    def _bounds_in_order(self) -> LimitSettings:
        if self.min > self.max:
            raise ValueError(f"min ({self.min:g}) must be at most max ({self.max:g})")
        if self.start is not None and not self.min <= self.start <= self.max:
            raise ValueError(
                f"start ({self.start:g}) must be between min ({self.min:g}) and max ({self.max:g})"
            )
        return self

    @property
    def initial_limit(self) -> float:
        """The limit a resource starts at: ``start``, or ``max`` when unset."""
        return self.max if self.start is None else self.start


class QuotaSettings(BaseModel):
    """What an API key of role ``user`` may submit unless the key says otherwise
    (``GENQUEUE_QUOTAS__*``; docs/security.md, "Quotas and back-pressure"). None or 0:
    unlimited. Operators and admins are limited only by their key's own figures."""

    tasks_per_minute: int | None = Field(None, ge=0)
    in_flight: int | None = Field(None, ge=0)  # queued + running tasks of the key's user


class WebhookSettings(BaseModel):
    """Webhook delivery (``GENQUEUE_WEBHOOKS__*``; docs/webhooks.md). No ``secret``: submits
    with a webhook are refused and no API process sends any."""

    # whsec_<base64>, the deployment's signing secret; checked when an API process starts
    # (genqueue/webhooks/service.py), so a bad one is never echoed in a validation error.
    secret: SecretStr = SecretStr("")
    allow_private: bool = False  # loopback, private, link-local targets: tests and labs only
    timeout_s: Annotated[Duration, Field(gt=0)] = 10.0  # one POST, connect to last byte
    max_attempts: int = Field(8, ge=1, le=100)
    # Backoff between attempts: equal jitter, doubling from retry_base_s up to retry_max_s
    # (8 attempts span about an hour); a 429 or 503's Retry-After wins when it says longer.
    retry_base_s: Duration = 30.0
    retry_max_s: Duration = 1800.0
    give_up_after_s: Duration = 6 * 3600.0  # no attempt later than this after it was made
    progress_interval_s: Duration = 5.0  # at most one task.progress delivery per task per this

    @model_validator(mode="after")
    def _backoff_in_order(self) -> WebhookSettings:
        if self.retry_base_s > self.retry_max_s:
            raise ValueError("retry_base_s must be at most retry_max_s")
        return self


class _SeedSource(PydanticBaseSettingsSource):
    """A settings source below ``GENQUEUE_*`` (environment and ``.env``) feeding the seeds'
    own variable names (``genqueue/seed_env.py``); values are validated by the fields."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: DotenvType | None) -> None:
        super().__init__(settings_cls)
        self._env_file = env_file

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole value

    def __call__(self) -> dict[str, Any]:
        from genqueue.seed_env import SeedEnv

        return SeedEnv(_env_file=self._env_file).values()


class Settings(BaseSettings):
    """genqueue's configuration. Environment: ``GENQUEUE_<FIELD>``, nested with ``__``; any
    of them from a file with ``GENQUEUE_<FIELD>_FILE`` (``genqueue/secret_files.py``)."""

    model_config = SettingsConfigDict(
        env_prefix="GENQUEUE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Path("./data")
    store: str = ""
    broker: str = ""
    artifacts: str = ""
    retention: Duration = 24 * 3600.0
    lease_s: Duration = 10.0
    heartbeat_s: Duration = 1.0
    sweep_s: Duration = 1.0
    purge_s: Duration = 60.0
    # How long a purged task's owner still gets 410 Gone for it, not 404 (genqueue/expiry.py).
    expired_kept_s: Duration = EXPIRED_KEPT_S
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_batch: int = Field(1000, ge=1)
    max_upload_bytes: int = Field(20 * 1_048_576, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=4096)
    # Tasks may read files by path only under this folder (on the workers); unset: never.
    input_root: Path | None = None
    worker: WorkerSettings = WorkerSettings()
    amqp: AmqpSettings = AmqpSettings()
    video: VideoSettings = VideoSettings()
    diagnosis: DiagnosisSettings = DiagnosisSettings()
    features: FeatureSettings = FeatureSettings()
    compat: CompatSettings = CompatSettings()
    # Every limited resource's rule unless ``limits`` names it; declared before ``limits``,
    # whose entries are merged over it.
    limit_defaults: LimitSettings = LimitSettings()
    # Per resource, only the fields that differ: GENQUEUE_LIMITS='{"video-cloud": {"max": 8}}'.
    limits: dict[str, LimitSettings] = Field(default_factory=dict)
    # Fair share between users inside a queue: a user's weight (default 1) is their share
    # against the others': GENQUEUE_FAIR_WEIGHTS='{"batch-bot": 0.5, "ann": 2}'.
    fair_weights: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    # API keys (docs/security.md): "on" asks every request for a key, "off" lets anyone in as
    # an operator, "auto" is off when the API listens only on loopback and on otherwise (the
    # `genqueue api`/`up` commands decide from --host; an app built by create_app with "auto"
    # left unresolved runs with auth off).
    auth: Literal["auto", "on", "off"] = "auto"
    # Per-key submit quotas (genqueue/api/quotas.py) and, per queue, the most queued tasks it
    # takes before submits into it answer 429: GENQUEUE_QUEUE_LIMITS='{"video": 1000}'.
    quotas: QuotaSettings = QuotaSettings()
    webhooks: WebhookSettings = WebhookSettings()
    queue_limits: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env_file: DotenvType | None = getattr(dotenv_settings, "env_file", ".env")
        seed = _SeedSource(settings_cls, env_file)
        # <NAME>_FILE variables (genqueue/secret_files.py), each just below its plain kind.
        env, dotenv = variables_of(env_settings), variables_of(dotenv_settings)
        env_files = FileValuesSource(settings_cls, env)
        dotenv_files = FileValuesSource(settings_cls, dotenv, above=[env])
        return (
            init_settings,
            env_settings,
            env_files,
            dotenv_settings,
            dotenv_files,
            seed,
            file_secret_settings,
        )

    @field_validator("limits", mode="before")
    @classmethod
    def _limits_over_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        defaults = info.data.get("limit_defaults")
        if not isinstance(value, dict) or not isinstance(defaults, LimitSettings):
            return value  # invalid defaults are reported on their own field
        base = defaults.model_dump()
        return {
            name: {**base, **override} if isinstance(override, dict) else override
            for name, override in value.items()
        }

    @model_validator(mode="after")
    def _defaults_from_data_dir(self) -> Settings:
        # The embedded default: one SQLite file (store and broker) and an artifact folder,
        # both under data_dir, so GENQUEUE_DATA_DIR alone separates two instances.
        db_url = f"sqlite:///{(self.data_dir / 'genqueue.db').as_posix()}"
        self.store = self.store or db_url
        self.broker = self.broker or self.store
        self.artifacts = self.artifacts or (self.data_dir / "artifacts").as_posix()
        if self.heartbeat_s * 2 > self.lease_s:
            raise ValueError("heartbeat_s must be at most half of lease_s")
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr() and str() of the settings reach logs and tracebacks: no passwords there.
        for name, value in super().__repr_args__():
            url = name in {"store", "broker", "artifacts"} and isinstance(value, str)
            yield name, redact_url(value) if url else value

    @property
    def offline_after_s(self) -> float:
        """A worker silent this long is offline (and its leases are expired by then)."""
        return self.lease_s

    def limit_for(self, resource: str) -> LimitSettings:
        """The limiter rule of ``resource``: its entry in ``limits``, else the defaults."""
        return self.limits.get(resource, self.limit_defaults)


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and ``.env``) now, with explicit overrides on top."""
    return Settings(**overrides)
