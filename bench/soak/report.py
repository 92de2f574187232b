"""The soak's verdict: the per-pairing and per-fault tables, the findings, and the same
figures as JSON."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.soak.outcome import Fault, Outcome, epoch
from genqueue.models import FINISHED


def recovery(outcome: Outcome, fault: Fault) -> tuple[str, str]:
    """Seconds from the fault's end to the next task start and the next success; "never"
    if work was waiting and none came, "idle" if there was nothing left to do."""
    starts, successes, unstarted, unfinished = [], [], False, False
    for task in outcome.final.values():
        started, finished = epoch(task.get("started_at")), epoch(task.get("finished_at"))
        unstarted |= started is None and task["status"] not in FINISHED
        unfinished |= finished is None or finished >= fault.ended
        if started is not None and started >= fault.ended:
            starts.append(started - fault.ended)
        if task["status"] == "succeeded" and finished is not None and finished >= fault.ended:
            successes.append(finished - fault.ended)

    def shown(delays: list[float], waiting: bool) -> str:
        return f"{min(delays):.1f}" if delays else "never" if waiting else "idle"

    return shown(starts, unstarted), shown(successes, unfinished)


def max_wait_s(outcome: Outcome) -> float:
    waits = [
        started - created
        for t in outcome.final.values()
        if (started := epoch(t.get("started_at"))) and (created := epoch(t.get("created_at")))
    ]
    return max(waits, default=0.0)


def report(outcomes: list[Outcome]) -> dict[str, Any]:
    """Print the tables and the findings; return the figures as one JSON-able dict."""
    head = ["accepted", "succeeded", "failed", "cancelled", "lost", "twice", "max wait s"]
    head += ["worker exits", "api exits", "503s", "errors"]
    print(f"\n{'pairing':<15}" + "".join(f"{h:>{len(h) + 2}}" for h in head))
    figures: dict[str, Any] = {}
    for o in outcomes:
        if o.skipped:
            print(f"{o.pairing:<15}  skipped: {o.skipped}")
            figures[o.pairing] = {"skipped": o.skipped}
            continue
        worker_exits = sum(1 for e in o.exits if e.startswith("worker"))
        errors = sum(n for k, n in o.submit_errors.items() if k != "503")
        row = {
            "accepted": len(o.accepted),
            "succeeded": o.count("succeeded"),
            "failed": o.count("failed"),
            "cancelled": o.count("cancelled"),
            "lost": len(o.lost),
            "twice": len(o.twice),
            "max wait s": round(max_wait_s(o), 1),
            "worker exits": worker_exits,
            "api exits": len(o.exits) - worker_exits,
            "503s": o.submit_errors["503"],
            "errors": errors,
        }
        figures[o.pairing] = row
        print(f"{o.pairing:<15}" + "".join(f"{row[h]!s:>{len(h) + 2}}" for h in head))
    print(
        f"\n{'pairing':<15}{'at s':>6}  {'fault':<24}{'lasted s':>9}{'next start s':>14}"
        f"{'next success s':>16}  note"
    )
    for o in outcomes:
        for f in o.faults:
            start, success = recovery(o, f)
            print(
                f"{o.pairing:<15}{f.started - o.started:>6.0f}  {f.name:<24}"
                f"{f.ended - f.started:>9.1f}{start:>14}{success:>16}  {f.note}"
            )
            figures[o.pairing].setdefault("faults", []).append(
                {
                    "fault": f.name,
                    "lasted_s": round(f.ended - f.started, 1),
                    "next_start_s": start,
                    "next_success_s": success,
                }
            )
    print_findings(outcomes)
    return figures


def print_findings(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        if o.skipped:
            continue
        lines = [*o.exits]
        if o.lost:
            states = Counter(o.final.get(t, {}).get("status", "never read") for t in o.lost)
            lines.append(f"lost {len(o.lost)} by status {dict(states)}: {sorted(o.lost)[:5]}")
        if o.twice:
            lines.append(
                f"recorded twice: { {t: o.succeeded_counts[t] for t in sorted(o.twice)[:5]} }"
            )
        silent = [
            t
            for t in o.accepted
            if o.final.get(t, {}).get("status") == "succeeded" and t not in o.succeeded_counts
        ]
        if silent:
            lines.append(f"succeeded without a succeeded event: {len(silent)}: {silent[:5]}")
        if o.unanswered:
            lines.append(f"ran though not answered 201, by answer: {dict(o.unanswered)}")
        if o.submit_errors:
            lines.append(f"submit/cancel refusals and errors: {dict(o.submit_errors)}")
        if lines:
            print(f"\n[{o.pairing}]")
            for line in lines:
                print(f"  - {line}")
