"""What one pairing's soak found: plain records that the faults, the run and the report share."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from genqueue.models import FINISHED


@dataclass
class Fault:
    name: str
    started: float  # wall clock (time.time()), like the tasks' timestamps
    ended: float
    note: str = ""


@dataclass
class Outcome:
    pairing: str
    started: float
    accepted: set[str] = field(default_factory=set)
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    succeeded_counts: dict[str, int] = field(default_factory=dict)
    submit_errors: Counter[str] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)  # ran, though refused: why
    faults: list[Fault] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)  # processes that ended on their own
    skipped: str = ""

    @property
    def lost(self) -> set[str]:
        return {t for t in self.accepted if self.final.get(t, {}).get("status") not in FINISHED}

    @property
    def twice(self) -> set[str]:
        return {t for t, n in self.succeeded_counts.items() if n > 1}

    def count(self, status: str) -> int:
        return sum(1 for t in self.accepted if self.final.get(t, {}).get("status") == status)


def epoch(value: str | None) -> float | None:
    """An API timestamp (ISO 8601) as epoch seconds, comparable with ``time.time()``."""
    return datetime.fromisoformat(value).timestamp() if value else None
