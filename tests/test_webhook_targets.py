"""Which webhook targets are called (no loopback, private or link-local addresses unless
allowed), what a submit may ask for, the envelope, and what an attempt's answer means."""

from __future__ import annotations

import ipaddress
import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from genqueue.errors import InvalidInputError
from genqueue.models import Event, EventType, Task, TaskStatus, utcnow
from genqueue.settings import WebhookSettings
from genqueue.webhook_signature import new_secret
from genqueue.webhooks.envelope import task_delivery
from genqueue.webhooks.records import DeliveryState, WebhookDelivery, WebhookTarget
from genqueue.webhooks.schedule import after_attempt, retry_after_s
from genqueue.webhooks.targets import (
    TargetRefusedError,
    check_target,
    refusal,
    submitted_target,
)

SETTINGS = WebhookSettings(secret=new_secret())


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "not a public"),
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str, why: str) -> None:
    reason = refusal(ipaddress.ip_address(address))
    assert reason is not None and why in reason


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "https://10.0.0.5/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:9000/hook",  # a name: every address it resolves to is checked
    ],
)
async def test_private_targets_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(TargetRefusedError, match="resolves to"):
        await check_target(url, allow_private=False)
    await check_target(url, allow_private=True)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "//no-scheme", "http:///"]
)
async def test_only_http_urls_with_a_host_are_called(url: str) -> None:
    with pytest.raises(TargetRefusedError):
        await check_target(url, allow_private=True)


async def test_a_submit_names_the_field_at_fault() -> None:
    with pytest.raises(InvalidInputError) as caught:
        await submitted_target("http://127.0.0.1/x", None, SETTINGS)
    assert [p.field for p in caught.value.problems] == ["webhook.url"]
    with pytest.raises(InvalidInputError) as caught:
        await submitted_target(
            "http://127.0.0.1/x", ["task.succeeded", "task.nope", "batch.finished"], SETTINGS
        )
    assert [p.field for p in caught.value.problems] == ["webhook.events.1", "webhook.events.2"]
    with pytest.raises(InvalidInputError) as caught:
        await submitted_target("https://example.com/x", None, WebhookSettings())
    assert [p.field for p in caught.value.problems] == ["webhook"]
    assert "GENQUEUE_WEBHOOKS__SECRET" in caught.value.problems[0].message


async def test_events_default_to_the_terminal_ones() -> None:
    allowed = WebhookSettings(secret=new_secret(), allow_private=True)
    task = await submitted_target("http://127.0.0.1/x", None, allowed)
    assert task.events == ["task.cancelled", "task.expired", "task.failed", "task.succeeded"]
    batch = await submitted_target("http://127.0.0.1/x", None, allowed, batch=True)
    assert batch.events[-1] == "batch.finished"
    asked = await submitted_target("http://h/x", ["task.progress", "task.progress"], allowed)
    assert asked.events == ["task.progress"]


def test_the_envelope_carries_the_task_and_its_event_under_a_stable_id() -> None:
    at = datetime(2026, 12, 1, 12, 0, 0, 250000, tzinfo=UTC)
    task = Task(
        id="t1",
        kind="debug.echo",
        queue="q",
        payload={"n": 1},
        created_at=at,
        status=TaskStatus.SUCCEEDED,
        result={"n": 1},
        webhook=WebhookTarget(url="https://example.com/h", events=["task.succeeded"]),
    )
    event = Event(
        id="42", type=EventType.SUCCEEDED, task_id="t1", status=TaskStatus.SUCCEEDED, at=at
    )
    assert task.webhook is not None
    delivery = task_delivery(event, task, task.webhook)
    assert (delivery.id, delivery.task_id, delivery.event) == ("msg_42", "t1", "task.succeeded")
    sent = json.loads(delivery.body)
    assert sent["type"] == "task.succeeded" and sent["timestamp"] == "2026-12-01T12:00:00.250000Z"
    assert sent["data"]["id"] == "t1" and sent["data"]["result"] == {"n": 1}
    assert sent["data"]["event"] == {"id": "42", "status": "succeeded", "data": {}}
    assert "webhook" not in sent["data"] and "position" not in sent["data"]
    assert task_delivery(event, task, task.webhook).body == delivery.body  # same bytes again


def made(attempts: int, age_s: float = 0.0) -> WebhookDelivery:
    return WebhookDelivery(
        id="msg_1",
        url="https://e.com",
        event="task.failed",
        body="{}",
        attempts=attempts,
        created_at=utcnow() - timedelta(seconds=age_s),
    )


def test_a_2xx_is_delivered_and_other_answers_back_off_until_the_attempts_run_out() -> None:
    settings = WebhookSettings(max_attempts=3, retry_base_s=10, retry_max_s=100)
    now, rng = utcnow(), random.Random(7)
    assert after_attempt(made(0), 204, None, settings, now).state == DeliveryState.DELIVERED
    first = after_attempt(made(0), 500, None, settings, now, rng)
    second = after_attempt(made(1), None, None, settings, now, rng)
    assert first.state == second.state == DeliveryState.PENDING
    assert 5 <= first.retry_in_s <= 10 and 10 <= second.retry_in_s <= 20
    assert after_attempt(made(2), 500, None, settings, now).state == DeliveryState.FAILED
    assert after_attempt(made(0), 302, None, settings, now).state == DeliveryState.PENDING


def test_retry_after_is_honoured_on_429_and_503_and_time_runs_out() -> None:
    settings = WebhookSettings(retry_base_s=1, retry_max_s=2, give_up_after_s=3600)
    now = utcnow()
    assert after_attempt(made(0), 429, 120.0, settings, now).retry_in_s == 120.0
    assert after_attempt(made(0), 503, 30.0, settings, now).retry_in_s == 30.0
    assert after_attempt(made(0), 500, 120.0, settings, now).retry_in_s <= 2
    old = made(0, age_s=3590)
    assert after_attempt(old, 500, None, settings, now).state == DeliveryState.PENDING
    assert after_attempt(old, 429, 60.0, settings, now).state == DeliveryState.FAILED
    assert after_attempt(made(0, 3601), 500, None, settings, now).state == DeliveryState.FAILED
    assert retry_after_s("17", now) == 17.0
    http_date = (now + timedelta(seconds=60)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 58 <= (retry_after_s(http_date, now) or 0) <= 61
    assert retry_after_s("soon", now) is None
