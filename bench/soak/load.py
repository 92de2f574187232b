"""The submitter: the mixed load a soak puts on the API while the faults strike."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import httpx


class Load:
    """The submitter: single tasks and batches at about ``rate`` tasks/s, a few cancels;
    remembers every id answered 201, counts every refusal and error."""

    def __init__(self, url: str, rng: random.Random, rate: float) -> None:
        self.url, self.rng, self.rate = url, rng, rate
        self.accepted: list[str] = []
        self.errors: Counter[str] = Counter()
        self.failures: list[tuple[float, float, str]] = []  # refused submits: from, to, why

    def task(self) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.7:
            payload = {"seconds": round(self.rng.uniform(0.01, 2), 3), "steps": 2}
            return {"kind": "debug.sleep", "payload": payload}
        if roll < 0.8:  # fails, then succeeds on a retry
            return {"kind": "debug.fail", "payload": {"fail_times": self.rng.choice([1, 2])}}
        if roll < 0.85:
            return {"kind": "debug.fail", "payload": {}}  # fails every attempt
        return {"kind": "debug.echo", "payload": {"n": len(self.accepted)}}

    def post(self, http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to a 200/201; else None, the failure counted and, for a submit, its
        time window kept (a task that runs anyway is matched to it by created_at)."""
        sent = time.time()
        try:
            reply = http.post(path, json=body)
            failure = "" if reply.status_code in (200, 201) else str(reply.status_code)
        except httpx.TimeoutException:
            failure = "timeout"  # indeterminate: may or may not have been stored
        except httpx.TransportError:
            failure = "conn"
        except httpx.HTTPError as exc:
            failure = type(exc).__name__
        if not failure:
            answer: dict[str, Any] = reply.json()
            return answer
        self.errors[failure] += 1
        if not path.endswith("/cancel"):
            self.failures.append((sent, time.time(), failure))
        return None

    def run(self, stop: threading.Event) -> None:
        # Longer than SQLite's busy timeout: see what the API answers, not our impatience.
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not stop.is_set():
                if self.rng.random() < 0.6:
                    size, created = 1, self.post(http, "/v1/tasks", self.task())
                    ids = [created["id"]] if created else []
                else:
                    size = self.rng.randint(2, 20)
                    body = {"tasks": [self.task() for _ in range(size)]}
                    created = self.post(http, "/v1/batches", body)
                    ids = list(created["task_ids"]) if created else []
                self.accepted += ids
                if ids and self.rng.random() < 0.03:
                    victim = self.rng.choice(self.accepted[-50:])
                    self.post(http, f"/v1/tasks/{victim}/cancel", {})
                # Pacing, not synchronisation: the load's rate is the subject here.
                stop.wait(size / self.rate * self.rng.uniform(0.5, 1.5) if ids else 0.2)
