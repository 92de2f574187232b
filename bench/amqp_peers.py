"""genqueue on RabbitMQ + PostgreSQL and on PostgreSQL alone, beside a raw aio-pika ceiling
and Celery and Dramatiq on the same RabbitMQ, and procrastinate on the same PostgreSQL,
measured in one run.

    make bench-amqp        (or: python -m bench.amqp_peers --tasks 3000)

Everything runs in a RabbitMQ vhost of its own, ``gqbench`` (deleted and made again for each
system), and a PostgreSQL schema of its own, ``gqbench`` in database ``test`` (dropped before
and after). procrastinate gets a database of its own, ``gqbench_procrastinate``, made before
and dropped after each run. The peers' done counter lives on Redis database 15, flushed by
their driver.

* raw ceiling: one asyncio process, the least RabbitMQ work that still gives at-least-once
  delivery: persistent messages published with confirms (500 in flight at a time) to a durable
  queue, consumed with manual acks at prefetch 64;
* genqueue: see bench/runs.py; the store keeps every record, the broker only delivers ids.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time

import aio_pika

from bench.runs import Row, genqueue_run, peer_run, print_ratios, print_table

VHOST = "gqbench"
AMQP = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "gqbench"
PEERS = ["celery", "dramatiq"]
PG_PEERS = ["procrastinate"]  # PostgreSQL alone, compared with "genqueue postgres"
PEER_DATABASE = "gqbench_procrastinate"


def fresh_vhost() -> None:
    subprocess.run(["rabbitmqctl", "delete_vhost", VHOST], capture_output=True, check=False)
    subprocess.run(["rabbitmqctl", "add_vhost", VHOST], capture_output=True, check=True)
    subprocess.run(
        ["rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )


def peer_database(create: bool) -> None:
    """Drop procrastinate's database (with FORCE: a worker may still hold a connection), and
    make it again when ``create``."""
    statements = [f"DROP DATABASE IF EXISTS {PEER_DATABASE} WITH (FORCE)"]
    if create:
        statements.append(f"CREATE DATABASE {PEER_DATABASE}")
    for sql in statements:
        subprocess.run(["psql", POSTGRES, "-qc", sql], capture_output=True, check=True)


def pg_peer_run(peer: str, n: int, processes: int) -> dict[str, float]:
    peer_database(create=True)
    try:
        dsn = POSTGRES.rsplit("/", 1)[0] + f"/{PEER_DATABASE}"
        return peer_run(peer, n, processes, {"BENCH_PROCRASTINATE_DSN": dsn})
    finally:
        peer_database(create=False)


def fresh_schema() -> None:
    subprocess.run(
        ["psql", POSTGRES, "-qc", f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"],
        capture_output=True,
        check=True,
    )


async def raw_ceiling(n: int) -> float:
    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=64)
        queue = await channel.declare_queue("raw", durable=True)
        done = asyncio.Event()
        acked = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal acked
            await message.ack()
            acked += 1
            if acked == n:
                done.set()

        started = time.perf_counter()
        await queue.consume(on_message)
        exchange = channel.default_exchange
        for start in range(0, n, 500):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            str(i).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                        ),
                        routing_key="raw",
                    )
                    for i in range(start, min(n, start + 500))
                )
            )
        await done.wait()
        return n / (time.perf_counter() - started)


def genqueue_on(store: str, broker: str, n: int, processes: int, samples: int) -> dict[str, float]:
    fresh_vhost()
    fresh_schema()
    try:
        return asyncio.run(genqueue_run(store, broker, n, processes, samples))
    finally:
        fresh_schema()


def main() -> None:
    parser = argparse.ArgumentParser(description="genqueue on RabbitMQ/PostgreSQL vs peers")
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--peers", default=",".join(PEERS + PG_PEERS))
    args = parser.parse_args()
    n = args.tasks
    fresh_vhost()
    ceiling = asyncio.run(raw_ceiling(n))
    rows: list[Row] = [("raw aio-pika ceiling", 1, ceiling, float("nan"))]
    store = f"{POSTGRES}?schema={SCHEMA}"
    systems = {"genqueue rabbitmq+postgres": (store, AMQP), "genqueue postgres": (store, store)}
    latency: dict[str, dict[str, float]] = {}
    for processes in (1, 2):
        for name, (store_url, broker_url) in systems.items():
            samples = args.latency_samples if processes == 1 else 0
            figures = genqueue_on(store_url, broker_url, n, processes, samples)
            rows.append((name, processes, figures["tasks_per_s"], figures["enqueue_per_s"]))
            if samples:
                latency[name] = figures
        for peer in [p for p in args.peers.split(",") if p]:
            if peer in PG_PEERS:
                result = pg_peer_run(peer, n, processes)
            else:
                fresh_vhost()
                result = peer_run(peer, n, processes, {"BENCH_BROKER": AMQP})
            rows.append((peer, processes, result["tasks_per_s"], result["enqueue_per_s"]))
    subprocess.run(["rabbitmqctl", "delete_vhost", VHOST], capture_output=True, check=False)
    print_table(rows, ceiling, list(systems), PEERS)
    print("PostgreSQL alone against the peer on the same server:")
    print_ratios(rows, ceiling, ["genqueue postgres"], PG_PEERS)
    for name, figures in latency.items():
        print(
            f"{name} submit-to-start: p50 {figures['p50_ms']:.2f} ms, "
            f"p99 {figures['p99_ms']:.2f} ms"
        )


if __name__ == "__main__":
    main()
