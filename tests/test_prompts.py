"""Prompt search on a real store and the real MiniLM: nearest past prompts first."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from genqueue.backends.sqlite.store import SqliteStore
from genqueue.contracts import Claim, Store, Succeeded
from genqueue.models import NewTask
from genqueue.prompts import PromptSearch


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await SqliteStore.connect(f"sqlite:///{tmp_path / 'p.db'}")
    yield store
    await store.aclose()


async def past(store: Store, prompt: str, kind: str = "image.generate", done: bool = True) -> str:
    task = NewTask(
        id=uuid.uuid4().hex, kind=kind, queue="image", payload={"prompt": prompt}, max_attempts=1
    )
    await store.submit([task])
    if done:
        claim = await store.claim(task.id, "w", 5.0)
        assert isinstance(claim, Claim)
        await store.finish(claim.lease, Succeeded({"image_url": f"/v1/artifacts/{task.id}/x"}))
    return task.id


async def test_the_nearest_prompt_comes_first_and_unfinished_tasks_are_left_out(
    store: Store,
) -> None:
    kitten = await past(store, "a small kitten asleep on a sofa")
    await past(store, "quarterly earnings report, bar chart")
    await past(store, "a lighthouse on a cliff at sunset")
    await past(store, "a cat sleeping on a couch", done=False)  # queued: no result to show
    video = await past(store, "a kitten playing with yarn", kind="video.generate")
    search = PromptSearch(store)

    hits = await search.similar("a cat napping on the couch", k=3)
    assert [h.task.id for h in hits][:1] == [kitten]
    assert hits[0].score > hits[-1].score
    assert all(h.task.status == "succeeded" for h in hits)
    only_videos = await search.similar("a cat napping on the couch", k=3, kind="video.generate")
    assert [h.task.id for h in only_videos] == [video]


async def test_prompts_are_embedded_once_per_process(store: Store) -> None:
    await past(store, "a red fox in the snow")
    search = PromptSearch(store)
    await search.similar("fox", k=1)
    cached = dict(search._vectors)
    await search.similar("snowy forest", k=1)
    assert search._vectors.keys() == cached.keys()
    assert all(search._vectors[k] is cached[k] for k in cached)
