"""Every Prometheus collector genqueue exposes, in one place, on a per-app registry.

Cluster figures (tasks per queue and status, workers, broker depth) are read from the store at
scrape time, so any API instance reports the same numbers whatever process did the work.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from genqueue.contracts import Broker, Store
from genqueue.models import TaskStatus, WorkerStatus


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.submitted = Counter(
            "genqueue_tasks_submitted",
            "Tasks accepted by this API process",
            ["kind"],
            registry=r,
        )
        self.http_requests = Histogram(
            "genqueue_http_request_seconds",
            "HTTP request latency",
            ["method", "route", "code"],
            registry=r,
        )
        self.tasks = Gauge(
            "genqueue_tasks",
            "Tasks in the store by queue and status",
            ["queue", "status"],
            registry=r,
        )
        self.depth = Gauge(
            "genqueue_broker_depth", "Messages waiting in the broker", ["queue"], registry=r
        )
        self.workers = Gauge(
            "genqueue_workers", "Workers in the registry by status", ["status"], registry=r
        )
        self.worker_tasks = Gauge(
            "genqueue_worker_tasks_total",
            "Tasks finished per worker",
            ["worker", "outcome"],
            registry=r,
        )

    async def render(self, store: Store, broker: Broker) -> bytes:
        """Refresh the cluster gauges from the store, then render the exposition text."""
        for stats in await store.queue_stats():
            for status in TaskStatus:
                self.tasks.labels(stats.queue, status.value).set(stats.counts.get(status, 0))
            self.depth.labels(stats.queue).set(await broker.depth(stats.queue))
        workers = await store.list_workers()
        for worker_status in WorkerStatus:
            count = sum(1 for w in workers if w.status == worker_status)
            self.workers.labels(worker_status.value).set(count)
        for w in workers:
            self.worker_tasks.labels(w.name, "succeeded").set(w.succeeded)
            self.worker_tasks.labels(w.name, "failed").set(w.failed)
        data: bytes = generate_latest(self.registry)
        return data
