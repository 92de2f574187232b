"""The webhook sender against every store: an attempt is signed and recorded, a 503's
Retry-After is honoured, and a target that resolves to a private address at send time ends
the delivery refused, without a request. The receiver is an httpx.MockTransport."""

from __future__ import annotations

import asyncio

import httpx

from genqueue.contracts import Store
from genqueue.metrics import Metrics
from genqueue.settings import WebhookSettings
from genqueue.webhook_signature import new_secret, verify
from genqueue.webhooks.records import DeliveryState
from genqueue.webhooks.sender import WebhookSender
from tests.contract.test_store import submit_one
from tests.contract.test_webhook_deliveries import delivery

SECRET = new_secret()


def sender(store: Store, handler: httpx.MockTransport, allow_private: bool) -> WebhookSender:
    settings = WebhookSettings(secret=SECRET, allow_private=allow_private)
    return WebhookSender(store, settings, Metrics(), asyncio.Event(), transport=handler)


async def test_a_503_is_retried_after_its_retry_after_and_a_2xx_delivers(store: Store) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        verify(SECRET, request.content, dict(request.headers))  # raises if not signed right
        return (
            httpx.Response(503, headers={"retry-after": "120"})
            if len(seen) == 1
            else httpx.Response(200)
        )

    task_id = await submit_one(store)
    one = delivery(task_id, url="http://127.0.0.1:9/hook")
    await store.webhooks.add([one])
    send = sender(store, httpx.MockTransport(answer), allow_private=True)
    [taken] = await store.webhooks.take(1, 60.0)
    step = await send.deliver(taken)
    assert step.state == DeliveryState.PENDING and step.retry_in_s == 120.0
    [after] = await store.webhooks.deliveries(task_id=task_id)
    assert [a.status for a in after.log] == [503] and after.log[0].error == "HTTP 503"
    assert (await send.deliver(after)).state == DeliveryState.DELIVERED
    await send.aclose()
    assert seen[0].content == seen[1].content == one.body.encode()
    assert seen[0].headers["webhook-id"] == seen[1].headers["webhook-id"] == one.id
    [final] = await store.webhooks.deliveries(task_id=task_id)
    assert final.state == DeliveryState.DELIVERED and final.attempts == 2


async def test_a_private_target_at_send_time_is_refused_without_a_request(store: Store) -> None:
    seen: list[httpx.Request] = []
    task_id = await submit_one(store)
    one = delivery(task_id, url="http://localhost:9/hook")
    await store.webhooks.add([one])

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    send = sender(store, httpx.MockTransport(answer), allow_private=False)
    step = await send.deliver(one)
    await send.aclose()
    assert step.state == DeliveryState.REFUSED and seen == []
    [final] = await store.webhooks.deliveries(task_id=task_id)
    assert final.state == DeliveryState.REFUSED and final.next_attempt_at is None
    assert final.log[0].error is not None and final.log[0].error.startswith("refused")
    assert await store.webhooks.take(5, 0.0) == []
