"""Keep the worker processes of ``genqueue up`` running: restart a child that exits, with
backoff, and give up on what a restart cannot fix (exit 78, crash loops in every slot).

A thread, not the event loop: ``up`` runs uvicorn in its main thread, and supervision must go
on whatever the API is doing. For production, a service manager (systemd, Kubernetes) does
this job better; this is for one machine and ``make run``.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from genqueue.retry import RetryPolicy
from genqueue.worker.procpool import die_with_parent

log = logging.getLogger(__name__)

EX_CONFIG = os.EX_CONFIG  # 78 (sysexits.h): a configuration error; restarting cannot fix it
POLL_S = 0.5
BASE_DELAY_S = 0.5
MAX_DELAY_S = 30.0
RESTARTS = RetryPolicy(max_attempts=1, base_delay_s=BASE_DELAY_S, max_delay_s=MAX_DELAY_S)
STABLE_S = 60.0  # a child that stayed up this long resets its slot's backoff
LOOP_WINDOW_S = 60.0
LOOP_EXITS = 5  # more exits than this within LOOP_WINDOW_S: the slot is crash-looping


def restart_delay_s(streak: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before restarting a slot whose child failed ``streak`` times in a row.

    0.5 s doubling up to 30 s, with equal jitter as in :class:`genqueue.retry.RetryPolicy`
    (drawn from [nominal/2, nominal]) so that children that died together (a database restart)
    do not come back in lockstep.
    """
    return RESTARTS.delay_s(min(max(streak, 1), 64), rng)


def next_streak(streak: int, uptime_s: float) -> int:
    """The failure streak after a child exits: a child that stayed up ``STABLE_S`` was
    healthy, so its exit starts a new streak instead of lengthening the old one."""
    return 1 if uptime_s >= STABLE_S else streak + 1


def describe_exit(returncode: int) -> str:
    """``killed by SIGKILL``, ``exited with code 1``: how a log line names an exit."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    if returncode == EX_CONFIG:
        return f"exited with code {EX_CONFIG} (a configuration error, which a restart cannot fix)"
    return f"exited with code {returncode}"


@dataclass
class _Slot:
    name: str
    argv: Sequence[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = 0.0  # None: not to be started (running, or given up)
    streak: int = 0
    exits: deque[float] = field(default_factory=deque)
    last_exit: str = ""
    gave_up: bool = False

    def crash_looping(self, now: float) -> bool:
        while self.exits and now - self.exits[0] > LOOP_WINDOW_S:
            self.exits.popleft()
        return len(self.exits) > LOOP_EXITS

    def verdict(self) -> str:
        if self.gave_up:
            return f"worker {self.name} {self.last_exit}"
        return (
            f"worker {self.name} exited {len(self.exits)} times within {LOOP_WINDOW_S:.0f} s,"
            f" last {self.last_exit}"
        )


class Supervisor:
    """Runs one child per slot (``{name: argv}``) and restarts it when it exits.

    ``failure`` is set, and ``on_failure(failure)`` called from the supervising thread, once
    every slot has given up (exit 78) or is crash-looping; the slots are then left alone until
    :meth:`stop`. Children get SIGTERM if ``up`` dies, even by SIGKILL (PDEATHSIG).
    """

    def __init__(
        self,
        commands: Mapping[str, Sequence[str]],
        *,
        grace_s: float,
        on_failure: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.failure: str | None = None
        self._slots = [_Slot(name, argv) for name, argv in commands.items()]
        self._grace_s = grace_s
        self._on_failure = on_failure
        self._stopping = threading.Event()
        # Every child is started and stopped by this one thread: PDEATHSIG fires when the
        # *thread* that forked a child ends, so it must outlive its children.
        self._thread = threading.Thread(target=self._run, name="genqueue-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """SIGTERM every child, wait up to the grace period, then SIGKILL; returns when all
        have exited."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(self._grace_s + 10)
        else:  # never started, or died: the slots are ours
            self._terminate_all()

    def _run(self) -> None:
        while True:
            try:
                self._tick(time.monotonic())
            except Exception:  # keep supervising: a dead thread would take its children along
                log.exception("worker supervisor")
            if self._stopping.wait(POLL_S):
                break
        self._terminate_all()

    def _tick(self, now: float) -> None:
        if self.failure is not None:
            return
        exited = [
            (slot, slot.proc.pid, code)
            for slot in self._slots
            if slot.proc is not None and (code := slot.proc.poll()) is not None
        ]
        for slot, _, code in exited:
            self._exited(slot, code, now)
        if self._slots and all(s.gave_up or s.crash_looping(now) for s in self._slots):
            self.failure = "; ".join(s.verdict() for s in self._slots)
        for slot, pid, _ in exited:
            if slot.restart_at is None or self.failure is not None:
                log.error(
                    "worker %s (pid %d) %s; not restarting it", slot.name, pid, slot.last_exit
                )
            else:
                delay = f"{slot.restart_at - now:.1f} s"
                log.warning(
                    "worker %s (pid %d) %s; restarting in %s", slot.name, pid, slot.last_exit, delay
                )
        if self.failure is not None:
            log.error("giving up on the workers: %s", self.failure)
            self._on_failure(self.failure)
            return
        for slot in self._slots:
            if slot.restart_at is not None and now >= slot.restart_at:
                self._spawn(slot, now)

    def _exited(self, slot: _Slot, code: int, now: float) -> None:
        slot.proc = None
        slot.last_exit = describe_exit(code)
        slot.exits.append(now)
        if code == EX_CONFIG:
            slot.gave_up, slot.restart_at = True, None
        else:
            slot.streak = next_streak(slot.streak, now - slot.started_at)
            slot.restart_at = now + restart_delay_s(slot.streak)

    def _spawn(self, slot: _Slot, now: float) -> None:
        first = not slot.exits
        slot.restart_at, slot.started_at = None, now
        try:
            slot.proc = subprocess.Popen(
                slot.argv,
                # Ctrl-C in a terminal signals the whole foreground process group; in a group
                # of their own, workers get one SIGTERM from stop() (a graceful stop) instead
                # of SIGINT and then SIGTERM (the second one hands in-flight tasks back), and
                # none exits early and is restarted while the API shuts down.
                process_group=0,
                preexec_fn=partial(die_with_parent, signal.SIGTERM),
            )
        except (OSError, subprocess.SubprocessError) as exc:  # out of pids, say: a failed run
            slot.exits.append(now)
            slot.last_exit = f"could not start ({exc})"
            slot.streak += 1
            slot.restart_at = now + restart_delay_s(slot.streak)
            log.error("worker %s %s; trying again", slot.name, slot.last_exit)
            return
        if first:
            log.info("worker %s started (pid %d)", slot.name, slot.proc.pid)
        else:
            log.warning("worker %s restarted (pid %d)", slot.name, slot.proc.pid)

    def _terminate_all(self) -> None:
        live = [s.proc for s in self._slots if s.proc is not None and s.proc.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace_s
        for proc in live:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "worker pid %d still running after %.0f s; killing it", proc.pid, self._grace_s
                )
                proc.kill()
                proc.wait()
