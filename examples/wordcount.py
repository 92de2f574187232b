"""A kind of your own: count words, with progress, registered with ``--kinds``.

genqueue up --kinds examples.wordcount
python -m examples.wordcount "the quick brown fox jumps over the lazy dog"
"""

from __future__ import annotations

import sys
from collections import Counter

from pydantic import BaseModel, Field

from genqueue import Client, RetryPolicy, TaskContext, kind


class Text(BaseModel):
    text: str = Field(min_length=1, max_length=100_000)
    top: int = Field(3, ge=1, le=100)


class Counts(BaseModel):
    words: int
    top: list[tuple[str, int]]


@kind(
    "text.wordcount",
    payload=Text,
    result=Counts,
    queue="text",
    timeout_s=30,
    retry=RetryPolicy(max_attempts=2),
)
def wordcount(payload: Text, ctx: TaskContext) -> Counts:
    """Count the words of a text (sync: runs in a worker thread)."""
    words = payload.text.lower().split()
    counts: Counter[str] = Counter()
    for i, word in enumerate(words, 1):
        counts[word] += 1
        if i % 1000 == 0:
            ctx.progress(i / len(words), f"{i} words")
    return Counts(words=len(words), top=counts.most_common(payload.top))


def main(url: str = "http://127.0.0.1:8000") -> None:
    text = " ".join(sys.argv[1:]) or "to be or not to be"
    with Client(url) as client:
        task = client.submit("text.wordcount", {"text": text})
        done = client.wait(task.id, timeout_s=30)
        print(done.status, done.result)


if __name__ == "__main__":
    main()
