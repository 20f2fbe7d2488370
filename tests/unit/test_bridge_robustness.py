"""No message can stop the bridge or vanish: the safety net, dead letters that fit in Kafka,
and the shutdown ack rule, without brokers (a stand-in producer and MQTT client)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from paho.mqtt.enums import MQTTErrorCode

import bridge.delivery
import bridge.runtime
import bridge.translate
from bridge._mqtt import Message
from bridge.acks import AckQueue
from bridge.delivery import Delivery
from bridge.metrics import BridgeMetrics
from bridge.routes import RouteTable
from bridge.runtime import Bridge
from bridge.settings import BridgeSettings
from bridge.translate import KafkaRecord, Translator
from iotml.core import headers as h
from iotml.core.deadletters import fit_dead_letter, fit_payload, record_size, shrink
from iotml.core.eventtime import EventTimeRange, now_ms

TOPIC = b"sensors/s1/dev-1/temperature"
BOOM = b"boom"  # the payload the injected parser fails on
HOLD = "hold"  # a delivery report the stand-in producer keeps back


def reading(seq: int) -> bytes:
    return b'{"temperature": 20.5, "seq": %d}' % seq


def message(payload: bytes, mid: int = 1, topic: bytes = TOPIC, props: Any = None) -> Message:
    return Message(topic, payload, 1, False, mid, props)


@pytest.fixture
def failing_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload parser raises an exception nobody foresaw on the payload ``boom``."""
    real = bridge.translate.parse_payload

    def parse(payload: bytes, *args: Any, **kwargs: Any) -> Any:
        if payload == BOOM:
            raise ZeroDivisionError("injected \ud800 failure")
        return real(payload, *args, **kwargs)

    monkeypatch.setattr(bridge.translate, "parse_payload", parse)


# ---- fitting dead letters in Kafka (iotml.core.deadletters) ----


def test_a_payload_within_the_limit_is_kept_whole_without_headers():
    assert fit_payload(b"x" * 100, 100) == (b"x" * 100, [])


def test_a_payload_over_the_limit_is_cut_to_a_prefix_with_its_size_and_hash():
    payload = bytes(range(256)) * 4096
    prefix, headers = fit_payload(payload, 1000)
    assert prefix == payload[:1000]
    assert dict(headers) == {
        h.ERROR_TRUNCATED: b"true",
        h.ERROR_ORIGINAL_SIZE: str(len(payload)).encode(),
        h.ERROR_SHA256: hashlib.sha256(payload).hexdigest().encode(),
    }


def test_a_fitted_dead_letter_fits_its_budget_key_and_headers_included():
    headers = [(h.ERROR_REASON, b"oversize"), ("big", b"h" * 5000)]
    value, fitted = fit_dead_letter(b"p" * 200_000, b"key", headers, 20_000)
    assert record_size(value, b"key", fitted) <= 20_000
    assert 10_000 < len(value) < 15_000
    assert dict(fitted)[h.ERROR_ORIGINAL_SIZE] == b"200000"


def test_shrinking_cuts_harder_then_keeps_only_the_essentials_then_gives_up():
    payload = b"p" * 100_000
    headers = [(h.ERROR_REASON, b"oversize"), (h.MQTT_QOS, b"1"), (h.ERROR_DETAIL, b"d" * 5000)]
    value, _ = fit_payload(payload, 80_000)
    headers += fit_payload(payload, 80_000)[1]
    forms = []
    form: tuple[bytes, bytes | None, list[tuple[str, bytes]]] | None = (value, b"k", headers)
    while form is not None:
        forms.append(form)
        form = shrink(*form, too_large=True)
    sizes = [len(v) for v, _, _ in forms]
    assert sizes == [80_000, 20_000, 5_000, 1_250, 0, 0]
    _, key, kept = forms[-1]
    assert key is None
    assert [k for k, _ in kept] == [
        h.ERROR_REASON,
        h.ERROR_DETAIL,
        h.ERROR_TRUNCATED,
        h.ERROR_ORIGINAL_SIZE,
        h.ERROR_SHA256,
    ]
    assert dict(kept)[h.ERROR_SHA256] == hashlib.sha256(payload).hexdigest().encode()
    assert len(dict(kept)[h.ERROR_DETAIL]) == 1000


# ---- the safety net while translating (bridge.translate) ----


def translate(*msgs: Message) -> list[KafkaRecord]:
    routes = RouteTable.parse(["sensors/{site}/{device}/{metric}"], "readings")
    return list(Translator(routes, "readings-dlq", EventTimeRange(), 65536).translate(msgs, 1))


@pytest.mark.usefixtures("failing_parser")
def test_a_message_whose_handling_raises_is_dead_lettered_as_unprocessable_and_the_rest_go_on():
    records = translate(message(reading(1)), message(BOOM), message(reading(2)))
    assert [r.reason for r in records] == [None, "unprocessable", None]
    dead = records[1]
    assert dead.topic == "readings-dlq"
    assert dead.value == BOOM
    headers = {k: v.decode() for k, v in dead.headers}  # strict UTF-8
    assert headers[h.ERROR_REASON] == "unprocessable"
    assert headers[h.ERROR_DETAIL] == "ZeroDivisionError: injected \\ud800 failure"
    assert headers[h.MQTT_TOPIC] == TOPIC.decode()


def test_header_values_that_utf8_cannot_hold_are_escaped_not_raised():
    props = SimpleNamespace(ContentType="text/\ud800", UserProperty=[("fw\udfff", "2.\ud800")])
    [record] = translate(message(reading(1), props=props))
    assert record.reason is None
    headers = {k: v.decode() for k, v in record.headers}
    assert headers[h.MQTT_CONTENT_TYPE] == "text/\\ud800"
    assert headers[h.MQTT_USER_PROPERTY_PREFIX + "fw\\udfff"] == "2.\\ud800"


# ---- Kafka refusing records (bridge.delivery), with a stand-in producer ----


def fake_message(topic: str, value: bytes, key: bytes | None, ts: int, headers: Any) -> Any:
    """What confluent-kafka hands a delivery callback."""
    headers = list(headers or [])
    return SimpleNamespace(
        topic=lambda: topic,
        value=lambda: value,
        key=lambda: key,
        timestamp=lambda: (1, ts),
        headers=lambda: headers,
    )


class FakeProducer:
    """Stands in for confluent_kafka.Producer. ``refuse(msg)`` returns an exception for
    ``produce()`` to raise; ``report(msg)`` the delivery outcome: None (confirmed), a
    KafkaError, or HOLD (no report yet)."""

    def __init__(self) -> None:
        self.refuse: Callable[[Any], Exception | None] = lambda m: None
        self.report: Callable[[Any], Any] = lambda m: None
        self.pending: list[tuple[Any, Any]] = []
        self.confirmed: list[Any] = []

    def __call__(self, config: dict[str, Any]) -> FakeProducer:
        return self

    def produce(self, topic: str, value: bytes, key: Any = None, **kw: Any) -> None:
        msg = fake_message(topic, value, key, kw.get("timestamp", 0), kw.get("headers"))
        exc = self.refuse(msg)
        if exc is not None:
            raise exc
        self.pending.append((msg, kw["on_delivery"]))

    def poll(self, timeout: float = 0) -> int:
        pending, self.pending = self.pending, []
        for msg, callback in pending:
            outcome = self.report(msg)
            if outcome is HOLD:
                self.pending.append((msg, callback))
                continue
            if outcome is None:
                self.confirmed.append(msg)
            callback(outcome, msg)
        if timeout and self.pending:
            time.sleep(min(timeout, 0.01))
        return len(pending)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return len(self.pending)

    def list_topics(self, timeout: float = 0) -> Any:
        return SimpleNamespace(topics=_AnyTopic())


class _AnyTopic:
    def __contains__(self, name: object) -> bool:
        return True


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> FakeProducer:
    fake = FakeProducer()
    monkeypatch.setattr(bridge.delivery, "Producer", fake)
    return fake


def settings(**overrides: Any) -> BridgeSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap": "127.0.0.1:1",
        "mqtt_url": "mqtt://127.0.0.1:1",
        "http_port": 0,
        "shutdown_timeout": 300,
        "max_dead_letter_bytes": 100_000,
    }
    values.update(overrides)
    return BridgeSettings(**values)


def reading_record(seq: int) -> KafkaRecord:
    headers = [(h.MQTT_TOPIC, TOPIC), (h.RECEIVED_AT, b"1")]
    return KafkaRecord("readings", b'{"seq": %d}' % seq, b"dev-1", now_ms(), headers)


def dead_record(payload: bytes) -> KafkaRecord:
    headers = [(h.ERROR_REASON, b"oversize"), (h.MQTT_TOPIC, TOPIC)]
    return KafkaRecord("readings-dlq", payload, b"dev-1", now_ms(), headers, "oversize")


def deliver(*records: KafkaRecord) -> tuple[Delivery, list[Any]]:
    """Send ``records`` as one batch, serve the delivery reports; (delivery, released batches)."""
    delivery = Delivery(settings(), BridgeMetrics())
    delivery.start([])
    batch = delivery.acks.open(list(range(1, len(records) + 1)), len(records), 1)
    delivery.send(iter(records), batch)
    released = []
    for _ in range(3):  # a refused record is handled when its report is served
        released += delivery.confirmed(0)
    return delivery, released


def count(delivery: Delivery, name: str, **labels: str) -> float:
    return delivery.metrics.registry.get_sample_value(name, labels) or 0.0


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


# ---- the ack rule (bridge.acks, bridge.runtime) ----


def test_a_batch_is_not_released_before_it_is_sealed_even_with_nothing_produced_yet():
    queue = AckQueue()
    batch = queue.open([1, 2], 2, generation=1)
    assert list(queue.ready()) == []
    batch.seal()
    assert [b.mids for b in queue.ready()] == [[1, 2]]


class FakeMqtt:
    """Stands in for the bridge's paho client: hands over ``per_read`` queued messages per
    loop turn, records the packet ids acknowledged."""

    def __init__(self, messages: list[Message], per_read: int) -> None:
        self.queue = list(messages)
        self.per_read = per_read
        self.acked: list[int] = []
        self.on_messages: Callable[[Message], Any] = lambda m: None
        self.on_connect: Callable[..., Any] = lambda *a: None
        self.on_disconnect: Callable[..., Any] = lambda *a: None
        self.read_budget = 2000
        self._host = ""
        self._sock: object | None = None
        self._connack = False

    def __call__(self, *args: Any, **kwargs: Any) -> FakeMqtt:
        return self

    def connect(self, *args: Any, **kwargs: Any) -> None:
        self._host, self._sock, self._connack = "fake", object(), True

    reconnect = connect

    def socket(self) -> object | None:
        return self._sock

    def subscribe(self, filters: Any) -> None:
        pass

    def buffered(self) -> bool:
        return False

    def loop(self, timeout: float = 0) -> MQTTErrorCode:
        if self._connack:
            self._connack = False
            ok = SimpleNamespace(is_failure=False)
            self.on_connect(self, None, SimpleNamespace(session_present=False), ok, None)
        else:
            for m in self.queue[: self.per_read]:
                self.on_messages(m)
            del self.queue[: self.per_read]
        time.sleep(timeout)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def loop_write(self) -> MQTTErrorCode:
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    loop_misc = loop_read = loop_write

    def ack_many(self, mids: list[int]) -> None:
        self.acked.extend(mids)

    def disconnect(self) -> None:
        self._sock = None


@pytest.fixture
def mqtt(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeMqtt]]:
    def make(messages: list[Message], per_read: int = 1) -> FakeMqtt:
        fake = FakeMqtt(messages, per_read)
        monkeypatch.setattr(bridge.runtime, "make_client", fake)
        return fake

    yield make


def run_until(bridge_: Bridge, done: Callable[[], bool]) -> None:
    """Run the bridge in a thread until ``done()``, then stop it (graceful shutdown)."""
    thread = threading.Thread(target=bridge_.run, name="bridge-under-test")
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not done():
            assert thread.is_alive(), "the bridge stopped"
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)
    finally:
        bridge_.stop()
        thread.join(10)
    assert not thread.is_alive()


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
