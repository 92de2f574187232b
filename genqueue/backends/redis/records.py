"""Redis hashes and stream entries turned into genqueue's models."""

from __future__ import annotations

import json

from genqueue.models import (
    Batch,
    Event,
    Progress,
    ServiceTime,
    Task,
    TaskStatus,
    WorkerInfo,
    WorkerStatus,
    from_epoch,
)


def _time(data: dict[str, str], name: str) -> float | None:
    value = data.get(name)
    return None if value in (None, "") else float(value)


def _dt(data: dict[str, str], name: str) -> object:
    value = _time(data, name)
    return None if value is None else from_epoch(value)


def task_from(data: dict[str, str]) -> Task:
    return Task.model_validate(
        {
            "id": data["id"],
            "kind": data["kind"],
            "queue": data["queue"],
            "payload": json.loads(data["payload"]),
            "user": data.get("user"),
            "priority": int(data["priority"]),
            "batch_id": data.get("batch_id"),
            "idempotency_key": data.get("idempotency_key"),
            "status": data["status"],
            "progress": Progress(
                fraction=float(data.get("progress", 0)), message=data.get("progress_message", "")
            ),
            "attempts": int(data["attempts"]),
            "max_attempts": int(data["max_attempts"]),
            "result": json.loads(data["result"]) if "result" in data else None,
            "error": data.get("error"),
            "created_at": _dt(data, "created_at"),
            "started_at": _dt(data, "started_at"),
            "finished_at": _dt(data, "finished_at"),
            "not_before": _dt(data, "not_before"),
            "worker_id": data.get("worker_id"),
            "lease_expires_at": _dt(data, "lease_expires_at"),
            "cancel_requested": data.get("cancel_requested") == "1",
            "resource": data.get("resource"),
            "start_by": _dt(data, "start_by"),
            "cancel_after_s": _time(data, "cancel_after_s"),
            "waiting_for": data.get("waiting_for"),
            "weight": float(data.get("weight", 1.0)),
            "batch_size": int(data["batch_size"]) if "batch_size" in data else None,
            "model": data.get("model"),
            "cache_key": data.get("cache_key"),
            "webhook": json.loads(data["webhook"]) if data.get("webhook") else None,
        }
    )


def batch_from(record: dict[str, str], counts: dict[str, str]) -> Batch:
    return Batch(
        id=record["id"],
        user=record.get("user") or None,
        created_at=from_epoch(float(record["created_at"])),
        size=int(record["size"]),
        counts={TaskStatus(s): int(n) for s, n in counts.items() if int(n) > 0},
        webhook=json.loads(record["webhook"]) if record.get("webhook") else None,
    )


def worker_from(data: dict[str, str]) -> WorkerInfo:
    return WorkerInfo(
        id=data["id"],
        name=data["name"],
        host=data["host"],
        pid=int(data["pid"]),
        queues=json.loads(data["queues"]),
        concurrency=int(data["concurrency"]),
        status=WorkerStatus(data["status"]),
        started_at=from_epoch(float(data["started_at"])),
        last_seen=from_epoch(float(data["last_seen"])),
        running=json.loads(data["running"]),
        succeeded=int(data["succeeded"]),
        failed=int(data["failed"]),
        reason=data.get("reason") or None,
        models=json.loads(data.get("models") or "[]"),  # absent in records of older versions
    )


def event_from(entry_id: str, fields: dict[str, str]) -> Event:
    return Event(
        id=entry_id,
        type=fields["type"],
        task_id=fields["task_id"],
        status=TaskStatus(fields["status"]),
        at=from_epoch(float(fields["at"])),
        user=fields.get("user") or None,
        batch_id=fields.get("batch_id") or None,
        kind=fields.get("kind") or None,
        data=json.loads(fields.get("data") or "{}"),
    )


def service_time_from(name: str, value: str) -> ServiceTime:
    """A field of ``service_times`` (JSON ``[queue, kind]``: ``mean deviation samples``)."""
    queue, kind = json.loads(name)
    mean, deviation, samples = value.split()
    return ServiceTime(
        queue=queue,
        kind=kind,
        mean_s=float(mean),
        deviation_s=float(deviation),
        samples=int(samples),
    )
