"""Every Prometheus collector genqueue exposes, in one place, on a per-app registry.

Cluster figures (tasks per queue and status, workers, broker depth, shared limits) are read
from the store at scrape time, so any API instance reports the same numbers whatever process
did the work. Totals the store keeps (tasks per worker, cuts of a limit) are gauges named
``*_total``: the store is their truth, not this process's counting.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from genqueue.contracts import Broker, Store
from genqueue.models import LimitStatus, TaskStatus, WorkerStatus
from genqueue.rates import RateMeter


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
        self.cache_hits = Counter(
            "genqueue_cache_hits",
            "Submissions this API process answered from the result cache (nothing run)",
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
        self.broker_up = Gauge(
            "genqueue_broker_up", "1 when the broker answers", ["backend"], registry=r
        )
        self.unacked = Gauge(
            "genqueue_broker_unacked",
            "Messages delivered and not yet acknowledged",
            ["queue"],
            registry=r,
        )
        self.consumers = Gauge(
            "genqueue_broker_consumers", "Consumers attached to a queue", ["queue"], registry=r
        )
        self.rate = Gauge(
            "genqueue_queue_rate_per_second",
            "Tasks submitted or finished per second over the last minute",
            ["queue", "what"],
            registry=r,
        )
        self.quota_refusals = Counter(
            "genqueue_quota_refusals",
            "Submits refused with 429 by this API process, by the limit that refused them",
            ["limit"],
            registry=r,
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

        def per_resource(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, ["resource"], registry=r)

        self.limit = per_resource(
            "genqueue_limit", "Shared concurrency limit of an upstream resource (AIMD)"
        )
        self.limit_permits = per_resource(
            "genqueue_limit_permits", "Calls allowed at once: the limit rounded down"
        )
        self.limit_in_flight = per_resource(
            "genqueue_limit_in_flight", "Running tasks holding a permit of the resource"
        )
        self.limit_waiting = per_resource(
            "genqueue_limit_waiting", "Queued tasks parked until a permit is free"
        )
        self.limit_cuts = per_resource(
            "genqueue_limit_cuts_total", "Times the limit was cut after a limit error"
        )
        self.limit_throttles = per_resource(
            "genqueue_limit_throttles_total", "Limit errors reported, whether they cut or not"
        )
        self.limit_blocked = per_resource(
            "genqueue_limit_blocked", "1 while a Retry-After holds every call back"
        )
        # Webhooks (genqueue/webhooks): counters of this process's work; pending from the store.
        self.webhook_made = Counter(
            "genqueue_webhook_deliveries_made", "Webhook deliveries this process made", registry=r
        )
        self.webhook_deliveries = Counter(
            "genqueue_webhook_deliveries",
            "Webhook deliveries this process ended, by outcome (delivered, failed, refused)",
            ["outcome"],
            registry=r,
        )
        self.webhook_attempts = Counter(
            "genqueue_webhook_attempts",
            "Webhook POSTs this process made, by result (2xx, http_error, network_error, refused)",
            ["result"],
            registry=r,
        )
        self.webhook_pending = Gauge(
            "genqueue_webhook_pending", "Webhook deliveries still to be made (store)", registry=r
        )
        self.webhook_feed_gaps = Counter(
            "genqueue_webhook_feed_gaps",
            "Times the webhook pump resumed past events the store no longer kept",
            registry=r,
        )

    async def render(
        self, store: Store, broker: Broker, kind_queues: list[str], rates: RateMeter
    ) -> bytes:
        """Refresh the cluster gauges from the store and broker, then render the text."""
        all_stats = await store.queue_stats()
        for stats in all_stats:
            for status in TaskStatus:
                self.tasks.labels(stats.queue, status.value).set(stats.counts.get(status, 0))
        for queue, rate in rates.read(all_stats).items():
            self.rate.labels(queue, "submitted").set(rate.submitted_per_s)
            self.rate.labels(queue, "finished").set(rate.finished_per_s)
        broker_status = await broker.status(sorted({s.queue for s in all_stats} | {*kind_queues}))
        self.broker_up.labels(broker_status.backend).set(int(broker_status.connected))
        for q in broker_status.queues:
            self.depth.labels(q.queue).set(q.ready)
            if q.unacked is not None:
                self.unacked.labels(q.queue).set(q.unacked)
            if q.consumers is not None:
                self.consumers.labels(q.queue).set(q.consumers)
        workers = await store.list_workers()
        for worker_status in WorkerStatus:
            count = sum(1 for w in workers if w.status == worker_status)
            self.workers.labels(worker_status.value).set(count)
        for w in workers:
            self.worker_tasks.labels(w.name, "succeeded").set(w.succeeded)
            self.worker_tasks.labels(w.name, "failed").set(w.failed)
        self._limits(await store.limits())
        self.webhook_pending.set(await store.webhooks.pending())
        data: bytes = generate_latest(self.registry)
        return data

    def _limits(self, limits: list[LimitStatus]) -> None:
        for status in limits:
            resource = status.resource
            self.limit.labels(resource).set(status.limit)
            self.limit_permits.labels(resource).set(status.permits)
            self.limit_in_flight.labels(resource).set(status.in_flight)
            self.limit_waiting.labels(resource).set(status.waiting)
            self.limit_cuts.labels(resource).set(status.cuts)
            self.limit_throttles.labels(resource).set(status.throttles)
            self.limit_blocked.labels(resource).set(int(status.blocked_until is not None))
