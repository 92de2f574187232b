"""/v1/queues, /v1/broker and /v1/workers: what is waiting where, and who is working."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from genqueue.api.auth import OperatorDep
from genqueue.api.deps import RuntimeDep, StoreDep
from genqueue.api.errors import error_responses
from genqueue.api.schemas import BrokerPublic, BrokerQueuePublic, KindPublic, QueuePublic
from genqueue.models import TaskStatus, WorkerInfo
from genqueue.rates import QueueRates
from genqueue.redact import redact_text

router = APIRouter(prefix="/v1", tags=["cluster"])


@router.get("/queues", response_model=list[QueuePublic], responses=error_responses(503))
async def queues(runtime: RuntimeDep, _: OperatorDep) -> list[QueuePublic]:
    """Every queue with tasks or kinds: counts per status and broker depth."""
    stats = {s.queue: s.counts for s in await runtime.store.queue_stats()}
    names = sorted(set(stats) | set(runtime.kinds.queues()))
    return [
        QueuePublic(
            name=name,
            counts={s: stats.get(name, {}).get(s, 0) for s in TaskStatus},
            depth=await runtime.broker.depth(name),
            kinds=[k.name for k in runtime.kinds if k.queue == name],
        )
        for name in names
    ]


@router.get(
    "/broker",
    response_model=BrokerPublic,
    responses={
        503: {
            "description": "the broker is unreachable (the same body), or the store is (an"
            " error body)",
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/BrokerPublic"},
                            {"$ref": "#/components/schemas/ErrorBody"},
                        ]
                    }
                }
            },
        }
    },
)
async def broker(runtime: RuntimeDep, _: OperatorDep) -> JSONResponse:
    """The broker's connection and, per queue, ready and unacknowledged messages, consumers and
    submit/finish rates over the last minute. 503 (same body) while it is unreachable."""
    stats = await runtime.store.queue_stats()
    rates = runtime.rates.read(stats)
    names = sorted({s.queue for s in stats} | set(runtime.kinds.queues()))
    status = await runtime.broker.status(names)
    idle = QueueRates(0.0, 0.0)
    body = BrokerPublic(
        backend=status.backend,
        connected=status.connected,
        detail=redact_text(status.detail),
        queues=[
            BrokerQueuePublic(
                name=q.queue,
                ready=q.ready,
                unacked=q.unacked,
                consumers=q.consumers,
                submitted_per_s=rates.get(q.queue, idle).submitted_per_s,
                finished_per_s=rates.get(q.queue, idle).finished_per_s,
            )
            for q in status.queues
        ],
    )
    return JSONResponse(body.model_dump(), status_code=200 if status.connected else 503)


@router.get("/workers", response_model=list[WorkerInfo], responses=error_responses(503))
async def workers(store: StoreDep, _: OperatorDep) -> list[WorkerInfo]:
    """Workers in the registry: online, degraded (alive, a backend unreachable: see
    ``reason``), offline (silent) or stopped, with their tasks."""
    return await store.list_workers()


@router.get("/kinds", response_model=list[KindPublic])
async def kinds(runtime: RuntimeDep) -> list[dict[str, object]]:
    """Registered kinds with their queue, timeout, retry policy and payload schema."""
    return [
        {
            "name": k.name,
            "queue": k.queue,
            "description": k.description,
            "timeout_s": k.timeout_s,
            "max_attempts": k.retry.max_attempts,
            "executor": k.executor,
            "payload_schema": k.payload_model.model_json_schema(),
        }
        for k in runtime.kinds
    ]
