"""Shared by the video tests: a real TaskContext on a temp artifact folder, and the Tencent VOD
stand-in served by uvicorn on 127.0.0.1 with settings that point at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from genqueue.artifacts import ArtifactStore
from genqueue.inputs import InputReader
from genqueue.kinds import Kind
from genqueue.resources import Resources
from genqueue.settings import VideoSettings, load_settings
from genqueue.standins.serve import serve_in_thread
from genqueue.standins.tencent_vod import StandinConfig, create_app
from genqueue.worker.execution import LocalContext


def local_context(
    tmp_path: Path, task_id: str = "t-video", attempt: int = 1, resources: Resources | None = None
) -> LocalContext:
    """The context the worker gives async handlers, on an artifact folder of the test's own."""
    root = str(tmp_path / "artifacts")
    inputs = InputReader(root, None, 10**8)
    return LocalContext(
        task_id, attempt, ArtifactStore(root), inputs, load_settings(), resources=resources
    )


@asynccontextmanager
async def kind_context(
    tmp_path: Path, kind: Kind, task_id: str = "t-video"
) -> AsyncIterator[LocalContext]:
    """``local_context`` with the kind's resources set up, as a worker would, and torn down."""
    resources = Resources(load_settings())
    try:
        await resources.ready(kind.all_resources)
        yield local_context(tmp_path, task_id, resources=resources)
    finally:
        await resources.aclose()


@dataclass(frozen=True)
class Standin:
    url: str
    config: StandinConfig

    def settings(self, **overrides: object) -> VideoSettings:
        """Worker settings that reach this stand-in, polling fast."""
        values: dict[str, object] = {
            "endpoint": self.url,
            "secret_id": SecretStr(self.config.secret_id),
            "secret_key": SecretStr(self.config.secret_key),
            "sub_app_id": 1320866336,
            "poll_interval_s": 0.05,
            "rate_limit_delay_s": 0.2,
        }
        return VideoSettings.model_validate(values | overrides)

    def env(self) -> dict[str, str]:
        """The same, as GENQUEUE_VIDEO__* variables for worker processes."""
        return {
            "GENQUEUE_VIDEO__ENDPOINT": self.url,
            "GENQUEUE_VIDEO__SECRET_ID": self.config.secret_id,
            "GENQUEUE_VIDEO__SECRET_KEY": self.config.secret_key,
            "GENQUEUE_VIDEO__SUB_APP_ID": "1320866336",
            "GENQUEUE_VIDEO__POLL_INTERVAL_S": "0.05",
            "GENQUEUE_VIDEO__RATE_LIMIT_DELAY_S": "0.2",
        }


@contextmanager
def running_standin(
    job_s: float = 0.3, retry_after_s: float = 0.1, max_concurrent: int | None = None
) -> Iterator[Standin]:
    config = StandinConfig(
        job_s=job_s, retry_after_s=retry_after_s, video_fps=4, max_concurrent=max_concurrent
    )
    with serve_in_thread(create_app(config)) as url:
        yield Standin(url, config)
