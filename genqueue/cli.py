"""The ``genqueue`` command: up, api, worker, submit, status, cancel, queues, workers, limits.

Server commands read settings from the environment (``GENQUEUE_*``, ``.env``); client commands
talk to an API at ``--url`` (``GENQUEUE_URL``, default http://127.0.0.1:8000).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from genqueue.api.schemas import TaskPublic
from genqueue.cli_keys import keys_app
from genqueue.client import DEFAULT_URL, Client, Preview
from genqueue.errors import ConfigError, GenqueueError
from genqueue.eta import rounded
from genqueue.models import TaskStatus, utcnow
from genqueue.redact import RedactingFormatter, redact_text
from genqueue.settings import parse_duration_s

app = typer.Typer(help="genqueue: a distributed job queue for AI workloads.", no_args_is_help=True)
out = Console()

Url = Annotated[str, typer.Option(envvar="GENQUEUE_URL", help="API base URL")]
Kinds = Annotated[list[str] | None, typer.Option("--kinds", help="extra module(s) declaring kinds")]
Preload = Annotated[
    bool,
    typer.Option(help="set up the kinds' resources (models, clients) before the first task"),
]
Slots = Annotated[
    str | None,
    typer.Option(help="named capacities kinds take per run, e.g. gpu=1,cpu=4"),
]
# Also from the environment; APP_HOST / APP_PORT are seed 000's names (genqueue/seed_env.py).
Host = Annotated[
    str, typer.Option(help="interface to listen on", envvar=["GENQUEUE_API_HOST", "APP_HOST"])
]
Port = Annotated[int, typer.Option(help="TCP port", envvar=["GENQUEUE_API_PORT", "APP_PORT"])]


def _logging(level: str = "INFO") -> None:
    # Every line passes through redact_text: a driver's error quoting a URL shows no password.
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=os.environ.get("GENQUEUE_LOG_LEVEL", level), handlers=[handler])
    # aio-pika and aiormq log every reconnect attempt of a RabbitMQ outage, with tracebacks;
    # genqueue says once when the broker is lost and once when it is back (worker/health.py).
    logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)
    logging.getLogger("aio_pika.robust_connection").setLevel(logging.ERROR)


def _serve_api(host: str, port: int, kinds: list[str]) -> None:
    import uvicorn

    from genqueue.api.app import create_app
    from genqueue.api.auth import resolve_auth
    from genqueue.kinds import load_kinds
    from genqueue.settings import load_settings

    settings = load_settings()
    # GENQUEUE_AUTH=auto: on unless this API listens on loopback only (docs/security.md).
    settings = settings.model_copy(update={"auth": resolve_auth(settings.auth, host)})
    if settings.auth == "on":
        out.print("API keys required (GENQUEUE_AUTH); make one: genqueue keys create")
    api = create_app(settings, load_kinds(kinds))
    # log_config=None: uvicorn's loggers (a failed request's traceback) use _logging()'s
    # redacting handler, not handlers of their own.
    options: dict[str, Any] = {"log_level": "warning", "log_config": None}
    uvicorn.run(api, host=host, port=port, timeout_graceful_shutdown=5, **options)


@contextlib.contextmanager
def _config_errors() -> Iterator[None]:
    """A configuration error is one line and exit 78 (EX_CONFIG), which tells a supervisor
    (`genqueue up`, systemd's RestartPreventExitStatus) that restarting cannot help."""
    from genqueue.supervise import EX_CONFIG

    try:
        yield
    except ConfigError as exc:
        message = escape(redact_text(str(exc)))
        out.print(f"[red]configuration error:[/] {message}", soft_wrap=True)
        raise typer.Exit(EX_CONFIG) from None


@app.command()
def api(host: Host = "127.0.0.1", port: Port = 8000, kinds: Kinds = None) -> None:
    """Run the HTTP API and console (no workers)."""
    _logging()
    out.print(f"genqueue API on http://{host}:{port}")
    with _config_errors():
        _serve_api(host, port, kinds or [])


@app.command()
def worker(
    worker_id: Annotated[
        str | None, typer.Argument(help="its name, as --name (seed 004: worker-001)")
    ] = None,
    queues: Annotated[str | None, typer.Option(help="comma-separated; default: all")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, max=1024)] = None,
    name: Annotated[str | None, typer.Option(help="shown in the registry")] = None,
    kinds: Kinds = None,
    preload: Preload = False,
    slots: Slots = None,
) -> None:
    """Run a worker process until SIGTERM / Ctrl-C (a second one requeues in-flight tasks)."""
    from genqueue.worker.capacity import parse_slots
    from genqueue.worker.main import run_worker

    _logging()
    queue_list = [q.strip() for q in queues.split(",") if q.strip()] if queues else None

    def run() -> None:
        with _config_errors():
            capacity = parse_slots(slots) if slots is not None else None
            chosen = name or worker_id
            asyncio.run(run_worker(queue_list, concurrency, chosen, kinds or [], preload, capacity))

    _call(run)


@app.command()
def up(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(min=0, max=64, help="worker processes")] = 2,
    concurrency: Annotated[int | None, typer.Option(min=1, max=1024)] = None,
    kinds: Kinds = None,
    preload: Preload = False,
    slots: Slots = None,
) -> None:
    """API + console + N workers on one machine (embedded SQLite by default); a worker that
    exits is restarted with backoff, except on a configuration error (exit 78)."""
    from genqueue.settings import load_settings
    from genqueue.supervise import Supervisor

    _logging()
    with _config_errors():
        settings = load_settings()
    extra = [arg for k in kinds or [] for arg in ("--kinds", k)]
    if concurrency:
        extra += ["--concurrency", str(concurrency)]
    if preload:
        extra.append("--preload")
    if slots:
        extra += ["--slots", slots]
    names = [f"up-{i + 1}" for i in range(workers)]
    supervisor = Supervisor(
        {n: [sys.executable, "-m", "genqueue", "worker", "--name", n, *extra] for n in names},
        grace_s=settings.worker.shutdown_grace_s + 5,
        # The API runs in this (main) thread: stop it the way an operator would.
        on_failure=lambda _: os.kill(os.getpid(), signal.SIGTERM),
    )
    # uvicorn re-raises a SIGTERM it caught once it has shut down; with the default action
    # that would end this process before the `finally` below stops the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        supervisor.start()
        out.print(f"[bold green]genqueue is up:[/] http://{host}:{port}  ({workers} workers)")
        _serve_api(host, port, kinds or [])
    finally:
        supervisor.stop()
        if supervisor.failure is not None:
            # The workers' own error messages went to this terminal just above.
            reason = escape(redact_text(supervisor.failure))
            out.print(
                f"[red]error:[/] genqueue up stops, its workers keep failing: {reason}",
                soft_wrap=True,
            )
            raise typer.Exit(1)  # replaces the SystemExit(0) of the SIGTERM above


def _parse_payload(payload: str | None, fields: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(payload) if payload else {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected key=value, got {item!r}")
        try:
            data[key] = json.loads(value)
        except ValueError:
            data[key] = value
    return data


def _duration(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration_s(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _moment(value: str | None, option: str) -> datetime | None:
    """A time with a zone (ISO 8601), or a duration from now (``10m``)."""
    if value is None:
        return None
    try:
        return utcnow() + timedelta(seconds=parse_duration_s(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        message = f"{value!r} is neither a duration (10m) nor a time with a zone (ISO 8601)"
        raise typer.BadParameter(message, param_hint=option)
    return moment


@app.command()
def submit(
    kind: Annotated[str, typer.Argument(help="e.g. image.generate")],
    fields: Annotated[list[str] | None, typer.Argument(help="payload as key=value")] = None,
    payload: Annotated[str | None, typer.Option(help="payload as JSON")] = None,
    user: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[int, typer.Option()] = 0,
    idempotency_key: Annotated[str | None, typer.Option()] = None,
    delay: Annotated[
        str | None, typer.Option(help="not started before this from now: 90, 30s, 15m")
    ] = None,
    start_by: Annotated[
        str | None,
        typer.Option(help="not started by then, it expires: 10m, or 2026-12-01T18:00:00Z"),
    ] = None,
    cancel_after: Annotated[
        str | None, typer.Option(help="a run longer than this is stopped: 90, 5m")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow progress until done")] = False,
    preview: Annotated[
        Path | None, typer.Option(help="with --wait: keep the latest live preview in this file")
    ] = None,
    url: Url = DEFAULT_URL,
) -> None:
    """Submit a task, e.g. ``genqueue submit image.generate prompt="a red fox" --wait``."""
    body = _parse_payload(payload, fields or [])
    delay_s = _duration(delay, "--delay")
    deadline = _moment(start_by, "--start-by")
    cancel_after_s = _duration(cancel_after, "--cancel-after")
    with Client(url) as client:
        task = _call(
            lambda: client.submit(
                kind,
                body,
                user=user,
                priority=priority,
                idempotency_key=idempotency_key,
                delay_s=delay_s,
                start_by=deadline,
                cancel_after_s=cancel_after_s,
            )
        )
        later = f", not before {task.not_before:%H:%M:%S}" if delay_s else ""
        out.print(f"task [bold]{task.id}[/] {task.status} (position {task.position}{later})")
        if (when := expected(task)) is not None:
            out.print(when)
        if wait:
            _follow(client, task.id, preview)


def _follow(client: Client, task_id: str, preview: Path | None = None) -> None:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out) as bar:
        line = bar.add_task("queued", total=1.0)
        for event in client.events(task_id=task_id):
            data = event.data
            if event.event == "snapshot":
                status, fraction = data["status"], data["progress"]["fraction"]
                desc = f"{status} (position {data['position']})" if data["position"] else status
                bar.update(line, completed=fraction, description=desc)
                if TaskStatus(status).finished:
                    break
            elif event.event == "task.preview":
                if preview is not None:  # replaced whole, so a viewer never reads half a file
                    part = preview.with_name(preview.name + ".part")
                    part.write_bytes(Preview.from_event(event).data)
                    part.replace(preview)
            elif event.event == "task.progress":
                bar.update(
                    line,
                    completed=data["data"]["fraction"],
                    description=data["data"]["message"] or "running",
                )
            else:
                bar.update(line, description=data["status"])
                if TaskStatus(data["status"]).finished:
                    break
    _print_task(client.get(task_id).model_dump(mode="json"))


def _print_task(task: dict[str, Any]) -> None:
    out.print_json(json.dumps(task))


def _call(fn: Any) -> Any:
    try:
        return fn()
    except GenqueueError as exc:
        out.print(f"[red]error:[/] {escape(redact_text(str(exc)))}")
        raise typer.Exit(1) from None


@app.command()
def status(task_id: str, url: Url = DEFAULT_URL) -> None:
    """Show a task: status, position, when it should start and finish, progress, result."""
    with Client(url) as client:
        task = _call(lambda: client.get(task_id))
    if (when := expected(task)) is not None:
        out.print(when)
    _print_task(task.model_dump(mode="json"))


def expected(task: TaskPublic) -> str | None:
    """The task's estimate for a person ("starts in about 40 s, done in about 2 min")."""
    eta = task.eta
    if eta is None:
        return None
    parts = []
    if eta.start_in_s is not None:
        parts.append(f"starts {rounded(eta.start_in_s)}")
    if eta.finish_in_s is not None:
        parts.append(f"done {rounded(eta.finish_in_s)}")
    return ", ".join(parts) or None


@app.command()
def cancel(task_id: str, url: Url = DEFAULT_URL) -> None:
    """Cancel a task (queued: never starts; running: stopped)."""
    with Client(url) as client:
        task = _call(lambda: client.cancel(task_id))
        note = " (cancel requested)" if task.cancel_requested else ""
        out.print(f"task {task.id}: {task.status}{note}")


@app.command()
def queues(url: Url = DEFAULT_URL) -> None:
    """Queues with their counts per status."""
    with Client(url) as client:
        rows = _call(client.queues)
    table = Table("queue", *[s.value for s in TaskStatus], "depth")
    for q in rows:
        table.add_row(q.name, *[str(q.counts.get(s, 0)) for s in TaskStatus], str(q.depth))
    out.print(table)


@app.command()
def workers(url: Url = DEFAULT_URL) -> None:
    """Workers in the registry."""
    with Client(url) as client:
        rows = _call(client.workers)
    reasons = any(w.reason for w in rows)  # a degraded worker says why
    table = Table("name", "status", "queues", "running", "succeeded", "failed", "last seen")
    if reasons:
        table.add_column("reason")
    for w in rows:
        table.add_row(
            w.name,
            w.status,
            ",".join(w.queues),
            str(len(w.running)),
            str(w.succeeded),
            str(w.failed),
            w.last_seen.strftime("%H:%M:%S"),
            *([escape(w.reason or "")] if reasons else []),
        )
    out.print(table)


@app.command()
def limits(url: Url = DEFAULT_URL) -> None:
    """Shared limits per upstream resource: limit, permits, calls in flight, tasks waiting."""
    with Client(url) as client:
        rows = _call(client.limits)
    table = Table("resource", "limit", "permits", "in flight", "waiting", "cuts", "blocked until")
    for limit in rows:
        blocked = limit.blocked_until.strftime("%H:%M:%S") if limit.blocked_until else "-"
        table.add_row(
            limit.resource,
            f"{limit.limit:g} ({limit.min:g}-{limit.max:g})",
            str(limit.permits),
            str(limit.in_flight),
            str(limit.waiting),
            str(limit.cuts),
            blocked,
        )
    out.print(table)


app.add_typer(keys_app, name="keys")


def main() -> None:
    app()
