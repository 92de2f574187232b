"""Adaptive concurrency against a capped upstream: AIMD beside fixed limits, in one run.

    python -m bench.aimd [--phase-s 40] [--job-s 1.0] [--recovery-s 4]

The Tencent VOD stand-in accepts at most K jobs in progress and answers the rest
``RequestLimitExceeded`` (as the real service does). Real API and worker processes on the
embedded backend (two workers, 16 slots, more than any limit tried) drain a backlog of
``video.generate`` cloud tasks, whose runs share the ``video-cloud`` limiter.

* steady: K = 8 for one phase each with AIMD (seed 003's rule: start 12, max 12, min 2, -2 on a
  limit error, +1 per quiet ``--recovery-s``), a fixed limit of 12 (the seed's start, never cut)
  and the best fixed limit, K itself;
* moving: AIMD while K goes 8 -> 4 -> 10, one phase each.

Per run: goodput (jobs the upstream accepted per second), limit errors as a share of calls, and
after each change of K the time until the limit settled near it (its permits within
[K - 2, K + 1] from then to the end of the phase). Goodput is a ratio against the best fixed
limit of the same run, because the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.helpers import Cluster
from tests.video_support import Standin, running_standin

RESOURCE = "video-cloud"
PAYLOAD = {"prompt": "一个小男孩在街上跑步", "provider": "cloud", "duration_s": 5}


@dataclass
class Run:
    """What one configuration did."""

    name: str
    caps: list[int]
    phase_s: float
    accepted: int = 0
    refused: int = 0
    phase_errors: list[float] = field(default_factory=list)  # limit errors per phase, a share
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, cap, permits)

    @property
    def seconds(self) -> float:
        return self.phase_s * len(self.caps)

    @property
    def goodput(self) -> float:
        return self.accepted / self.seconds

    @property
    def error_share(self) -> float:
        return self.refused / max(1, self.accepted + self.refused)

    def settle_s(self) -> list[float | None]:
        """Per phase: seconds from the change of K until the permits stayed near K."""
        out: list[float | None] = []
        for index, cap in enumerate(self.caps):
            start = index * self.phase_s
            phase = [s for s in self.samples if start <= s[0] < start + self.phase_s]
            settled: float | None = None
            for t, _, permits in phase:
                near = cap - 2 <= permits <= cap + 1
                if near and settled is None:
                    settled = t - start
                elif not near:
                    settled = None
            out.append(settled)
        return out


def policy(name: str, cap: int, recovery_s: float) -> dict[str, object]:
    if name == "aimd":
        return {"start": 12, "max": 12, "min": 2, "decrease": 2, "recovery_interval_s": recovery_s}
    fixed = 12 if name == "fixed-12" else cap
    return {"start": fixed, "max": fixed, "min": fixed}


def _permits(api_url: str) -> int:
    """The limiter's permits now, as the API shows them (0 before any worker set it up)."""
    answer = httpx.get(f"{api_url}/v1/limits/{RESOURCE}", timeout=10)
    return int(answer.json()["permits"]) if answer.status_code == 200 else 0


def drive(run: Run, standin: Standin, folder: Path, job_s: float, recovery_s: float) -> None:
    admin = f"{standin.url}/admin/limits"
    httpx.post(admin, json={"max_concurrent": run.caps[0]}).raise_for_status()
    before = httpx.get(admin).json()
    limits = {RESOURCE: policy(run.name, run.caps[0], recovery_s)}
    env = standin.env() | {"GENQUEUE_LIMITS": json.dumps(limits)}
    env.pop("GENQUEUE_VIDEO__RATE_LIMIT_DELAY_S")  # a refused task waits the default (10 s)
    (folder / run.name).mkdir(parents=True)
    cluster = Cluster(folder / run.name, extra_env=env)
    try:
        cluster.start_api()
        # Enough backlog that the upstream is never idle for want of work.
        backlog = int(max(run.caps) / job_s * run.seconds * 1.5) + 50
        for start in range(0, backlog, 200):
            size = min(200, backlog - start)
            body = {"tasks": [{"kind": "video.generate", "payload": PAYLOAD}] * size}
            httpx.post(f"{cluster.url}/v1/batches", json=body, timeout=30).raise_for_status()
        for _ in range(2):
            cluster.start_worker(concurrency=8)
        # The clock starts at the first accepted job, not at process start-up.
        while httpx.get(admin).json()["accepted"] == before["accepted"]:
            time.sleep(0.05)
        began = time.monotonic()
        start_counts = httpx.get(admin).json()
        for index, cap in enumerate(run.caps):
            httpx.post(admin, json={"max_concurrent": cap}).raise_for_status()
            at_start = httpx.get(admin).json()
            phase_end = began + (index + 1) * run.phase_s
            while (now := time.monotonic()) < phase_end:
                permits = _permits(cluster.url)
                run.samples.append((now - began, cap, permits))
                time.sleep(0.5)
            at_end = httpx.get(admin).json()
            refused = at_end["refused"] - at_start["refused"]
            calls = refused + at_end["accepted"] - at_start["accepted"]
            run.phase_errors.append(refused / max(1, calls))
        end_counts = httpx.get(admin).json()
        run.accepted = end_counts["accepted"] - start_counts["accepted"]
        run.refused = end_counts["refused"] - start_counts["refused"]
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phase-s", type=float, default=40.0)
    parser.add_argument("--job-s", type=float, default=1.0)
    # +1 per 4 quiet seconds climbs from 4 to 10 in 24 s (the target: settled within 30 s);
    # a shorter interval probes above the cap, and is refused, more often.
    parser.add_argument("--recovery-s", type=float, default=4.0)
    args = parser.parse_args()
    runs = [
        Run("aimd", [8], args.phase_s),
        Run("fixed-12", [8], args.phase_s),
        Run("fixed-K", [8], args.phase_s),
        Run("aimd", [8, 4, 10], args.phase_s),
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_standin(job_s=args.job_s, max_concurrent=8) as standin,
    ):
        for index, run in enumerate(runs):
            drive(run, standin, Path(tmp) / str(index), args.job_s, args.recovery_s)
    best = runs[2].goodput
    print(f"job {args.job_s:g} s, AIMD recovery +1 per {args.recovery_s:g} s quiet")
    print(f"{'run':<10} {'K':<9} {'goodput/s':>9} {'vs K':>6} {'errors':>7}  settled after (s)")
    for run in runs:
        settled = ", ".join("never" if s is None else f"{s:.0f}" for s in run.settle_s())
        caps = "->".join(map(str, run.caps))
        print(
            f"{run.name:<10} {caps:<9} {run.goodput:9.2f} {run.goodput / best:6.2f}"
            f" {run.error_share:7.1%}  {settled}"
        )
    moving = runs[3]
    # The best fixed limit of each phase of the moving run is its K: scale the steady one.
    oracle = best / runs[2].caps[0] * statistics.mean(moving.caps)
    print(f"moving run vs the best fixed limit of each phase: {moving.goodput / oracle:.2f}")
    for cap, errors in zip(moving.caps, moving.phase_errors, strict=True):
        permits = [p for _, c, p in moving.samples if c == cap]
        low, high, middle = min(permits), max(permits), statistics.median(permits)
        print(f"  K={cap}: permits median {middle:g}, range {low}-{high}; errors {errors:.1%}")


if __name__ == "__main__":
    main()
