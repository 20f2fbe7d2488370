"""The shutdown ack rule: only what Kafka confirmed is acked, and the log says the rest."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from bridge.runtime import Bridge
from iotml.core import headers as h
from tests.bridgefakes import (
    BOOM,
    HOLD,
    FakeMqtt,
    FakeProducer,
    message,
    reading,
    run_until,
    settings,
)


def test_shutdown_acks_exactly_the_confirmed_prefix_and_says_what_is_left(
    producer: FakeProducer, mqtt: Callable[..., FakeMqtt], caplog: pytest.LogCaptureFixture
):
    producer.report = lambda m: HOLD if json.loads(m.value())["metrics"]["seq"] == 4 else None
    client = mqtt([message(reading(i), mid=i + 1) for i in range(10)])
    b = Bridge(settings())
    run_until(b, lambda: not client.queue and len(client.acked) == 4 and b.acks.in_flight == 6)
    assert client.acked == [1, 2, 3, 4]  # the 5th is unconfirmed; the ones after wait behind it
    assert (
        caplog.records[-1]
        .getMessage()
        .startswith(
            "stopped: 4 of 10 message(s) read were confirmed by Kafka and acked; 6 left unacked"
        )
    )


@pytest.mark.usefixtures("failing_parser")
def test_a_failing_message_first_in_its_batch_acks_nothing_until_kafka_confirms(
    producer: FakeProducer, mqtt: Callable[..., FakeMqtt], caplog: pytest.LogCaptureFixture
):
    producer.report = lambda m: HOLD
    client = mqtt([message(BOOM, mid=1)] + [message(reading(i), mid=i + 2) for i in range(9)], 10)
    b = Bridge(settings())
    run_until(b, lambda: not client.queue and len(producer.pending) == 10)
    assert client.acked == []
    assert "0 of 10 message(s) read were confirmed" in caplog.records[-1].getMessage()


@pytest.mark.usefixtures("failing_parser")
def test_a_failing_message_is_dead_lettered_and_the_bridge_goes_on_and_stops_cleanly(
    producer: FakeProducer, mqtt: Callable[..., FakeMqtt], caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    client = mqtt([message(BOOM, mid=1)] + [message(reading(i), mid=i + 2) for i in range(9)], 10)
    b = Bridge(settings())
    run_until(b, lambda: len(client.acked) == 10)
    assert [m.topic() for m in producer.confirmed].count("readings") == 9
    [dead] = [m for m in producer.confirmed if m.topic() == "readings-dlq"]
    assert dict(dead.headers())[h.ERROR_REASON] == b"unprocessable"
    sample = b.metrics.registry.get_sample_value(
        "iotml_bridge_dead_letters_total", {"reason": "unprocessable"}
    )
    assert sample == 1
    assert caplog.records[-1].getMessage() == (
        "stopped cleanly: all 10 message(s) read were confirmed by Kafka and acked"
    )
