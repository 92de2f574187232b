"""The RabbitMQ layout rules: priority mapping, delay rounding, names, URL, mismatch advice."""

from __future__ import annotations

import pytest

from genqueue.backends.amqp.layout import (
    Layout,
    amqp_priority,
    delay_ms,
    precondition_error,
    prefetch_shares,
    resolve_queue_type,
    split_url,
)


def test_priority_mapping_is_monotonic_and_keeps_zero_between_signs() -> None:
    mapped = [amqp_priority(p, 10) for p in range(-1000, 1001)]
    assert mapped == sorted(mapped)
    assert (mapped[0], amqp_priority(0, 10), mapped[-1]) == (0, 5, 10)
    assert amqp_priority(-1, 10) < amqp_priority(0, 10) < amqp_priority(1, 10)
    # The contract's example: 5 first, then the zeros, then -1.
    assert amqp_priority(5, 10) > amqp_priority(0, 10) > amqp_priority(-1, 10)


@pytest.mark.parametrize("max_priority", [2, 3, 5, 10, 255])
def test_priority_mapping_uses_the_whole_range(max_priority: int) -> None:
    assert amqp_priority(-1000, max_priority) == 0
    assert amqp_priority(1000, max_priority) == max_priority
    assert amqp_priority(-1, max_priority) < amqp_priority(0, max_priority)
    assert amqp_priority(0, max_priority) < amqp_priority(1, max_priority)


def test_priority_mapping_clamps_out_of_range_values() -> None:
    assert amqp_priority(-5000, 10) == 0 and amqp_priority(5000, 10) == 10


def test_delays_round_up_to_two_significant_digits() -> None:
    assert [delay_ms(s) for s in (0.0001, 0.4, 0.437, 1.234, 43.21)] == [
        1,
        400,
        440,
        1300,
        44000,
    ]
    for seconds in (0.0123, 0.5, 2.71828, 99.99, 3600.5):
        assert seconds * 1000 <= delay_ms(seconds) <= seconds * 1000 * 1.1 + 1


def test_prefix_is_taken_out_of_the_url_and_other_parameters_stay() -> None:
    plain, prefix = split_url("amqps://u:p@h:5671/vh?prefix=t-1&cafile=ca.pem&heartbeat=30")
    assert prefix == "t-1"
    assert plain == "amqps://u:p@h:5671/vh?cafile=ca.pem&heartbeat=30"
    assert split_url("amqp://guest:guest@127.0.0.1:5672/") == (
        "amqp://guest:guest@127.0.0.1:5672/",
        "genqueue",
    )


def test_queues_are_prefixed_unless_named_in_settings() -> None:
    layout = Layout("p", "classic", 10, {"image": "image.generate.task"})
    assert layout.main("debug") == "p.debug"
    assert layout.main("image") == "image.generate.task"
    assert layout.wait("image", 400) == "p.image.delay.400"
    wait = layout.wait_arguments("image", 400)
    assert wait["x-dead-letter-routing-key"] == "image.generate.task"
    assert wait["x-dead-letter-exchange"] == ""
    assert wait["x-expires"] > wait["x-message-ttl"] == 400


def test_classic_queues_carry_priorities_and_quorum_queues_do_not() -> None:
    classic = Layout("p", "classic", 10, {})
    quorum = Layout("p", "quorum", 10, {})
    assert classic.main_arguments() == {"x-queue-type": "classic", "x-max-priority": 10}
    assert quorum.main_arguments() == {"x-queue-type": "quorum"}
    assert classic.message_priority(5) == 6 and quorum.message_priority(5) is None
    assert quorum.wait_arguments("q", 10)["x-dead-letter-strategy"] == "at-least-once"


def test_auto_picks_classic_priority_queues_on_3_and_4() -> None:
    assert resolve_queue_type("auto", "3.10.8") == "classic"
    assert resolve_queue_type("auto", "4.1.0") == "classic"
    assert resolve_queue_type("quorum", "3.10.8") == "quorum"


def test_prefetch_shares_add_up_and_never_reach_zero() -> None:
    assert prefetch_shares(8, 3) == [3, 3, 2]
    assert prefetch_shares(8, 1) == [8]
    assert prefetch_shares(2, 4) == [1, 1, 1, 1]


def test_precondition_error_names_the_queue_the_argument_and_the_fix() -> None:
    text = (
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'jobs' in vhost '/':"
        " received 'quorum' but current is 'classic'"
    )
    message = str(precondition_error("jobs", text))
    assert "'jobs'" in message and "'x-queue-type'" in message
    assert "received 'quorum' but current is 'classic'" in message
    assert "delete_queue jobs" in message and "GENQUEUE_AMQP__QUEUE_TYPE" in message
