"""Process entry for ``genqueue worker``: open backends, run a Worker, stop on signals."""

from __future__ import annotations

import asyncio
import logging
import signal

from genqueue.artifacts import ArtifactStore
from genqueue.backends import open_broker, open_patiently, open_store
from genqueue.kinds import load_kinds
from genqueue.settings import load_settings
from genqueue.worker.worker import Worker

log = logging.getLogger(__name__)


def dump_tasks() -> None:
    """SIGUSR1: log where every asyncio task of this worker is waiting (for a stuck worker)."""
    for task in asyncio.all_tasks():
        stack = "".join(
            f"\n  {f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"
            for f in task.get_stack()
        )
        log.warning("task %s:%s", task.get_name(), stack or " (no frames)")


async def run_worker(
    queues: list[str] | None,
    concurrency: int | None,
    name: str | None,
    kinds: list[str],
    preload: bool = False,
    slots: dict[str, int] | None = None,
) -> None:
    settings = load_settings()
    registry = load_kinds(kinds)
    store = await open_patiently(open_store, settings.store, settings)
    broker = await open_patiently(open_broker, settings.broker, settings)
    worker = Worker(
        store=store,
        broker=broker,
        kinds=registry,
        artifacts=ArtifactStore(settings.artifacts),
        settings=settings,
        queues=queues,
        concurrency=concurrency,
        name=name,
        preload=preload or settings.worker.preload,
        slots=slots,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
    try:
        await worker.run()
    finally:
        await broker.aclose()
        await store.aclose()
