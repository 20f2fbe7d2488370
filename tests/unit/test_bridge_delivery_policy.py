"""Kafka refusing records (bridge.delivery), with a stand-in producer."""

from __future__ import annotations

import hashlib
import logging
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from bridge.acks import AckQueue
from iotml.core import headers as h
from iotml.core.deadletters import record_size
from tests.bridgefakes import TOPIC, FakeProducer, count, dead_record, deliver, reading_record


def test_a_record_produce_raises_for_is_dead_lettered_as_unprocessable(producer: FakeProducer):
    producer.refuse = lambda m: (
        TypeError("odd header") if m.topic() == "readings" and m.value() == b'{"seq": 2}' else None
    )
    delivery, released = deliver(reading_record(1), reading_record(2), reading_record(3))
    assert len(released) == 1  # the batch is confirmed in full: acks go out
    dead = [m for m in producer.confirmed if m.topic() == "readings-dlq"]
    assert [m.value() for m in dead] == [b'{"seq": 2}']
    headers = dict(dead[0].headers())
    assert headers[h.ERROR_REASON] == b"unprocessable"
    assert headers[h.ERROR_DETAIL] == b"TypeError: odd header"
    assert count(delivery, "iotml_bridge_dead_letters_total", reason="unprocessable") == 1


def test_a_dead_letter_too_large_for_kafka_is_cut_to_fit_before_it_is_produced(
    producer: FakeProducer,
):
    payload = b"x" * 1_048_576
    delivery, released = deliver(dead_record(payload))
    [dead] = producer.confirmed
    headers = dict(dead.headers())
    assert record_size(dead.value(), dead.key(), dead.headers()) <= 100_000
    assert dead.value() == payload[: len(dead.value())]
    assert headers[h.ERROR_TRUNCATED] == b"true"
    assert headers[h.ERROR_ORIGINAL_SIZE] == b"1048576"
    assert headers[h.ERROR_SHA256] == hashlib.sha256(payload).hexdigest().encode()
    assert count(delivery, "iotml_bridge_dead_letters_truncated_total") == 1
    assert len(released) == 1


def test_a_dead_letter_kafka_still_refuses_as_too_large_is_cut_harder(producer: FakeProducer):
    too_large = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    producer.refuse = lambda m: too_large if len(m.value()) > 20_000 else None
    payload = b"y" * 50_000
    _, released = deliver(dead_record(payload))
    [dead] = producer.confirmed
    assert 0 < len(dead.value()) <= 20_000
    assert dict(dead.headers())[h.ERROR_ORIGINAL_SIZE] == b"50000"
    assert len(released) == 1


def test_a_dead_letter_refused_even_minimal_is_logged_with_its_mqtt_topic_and_counted(
    producer: FakeProducer, caplog: pytest.LogCaptureFixture
):
    producer.report = lambda m: (
        KafkaError(KafkaError.INVALID_RECORD) if m.topic() == "readings-dlq" else None
    )
    delivery, released = deliver(reading_record(1), dead_record(b"bad"))
    assert len(released) == 1  # not holding every later message back
    assert count(delivery, "iotml_bridge_dead_letters_refused_total", error="INVALID_RECORD") == 1
    [line] = [r for r in caplog.records if "even in its minimal form" in r.getMessage()]
    assert line.levelno == logging.ERROR
    assert TOPIC.decode() in line.getMessage()


def test_an_unusable_dead_letter_topic_holds_the_acks_until_kafka_takes_the_dead_letter(
    producer: FakeProducer,
):
    refusals = iter([KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)])
    producer.report = lambda m: next(refusals, None) if m.topic() == "readings-dlq" else None
    delivery, released = deliver(dead_record(b"bad"))
    assert released == []
    deadline = time.monotonic() + 5
    while not released and time.monotonic() < deadline:
        released += delivery.confirmed(0.05)  # retried after a second
    assert len(released) == 1
    assert [m.topic() for m in producer.confirmed] == ["readings-dlq"]


def test_a_batch_is_not_released_before_it_is_sealed_even_with_nothing_produced_yet():
    queue = AckQueue()
    batch = queue.open([1, 2], 2, generation=1)
    assert list(queue.ready()) == []
    batch.seal()
    assert [b.mids for b in queue.ready()] == [[1, 2]]
