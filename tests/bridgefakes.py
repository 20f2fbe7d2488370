"""Stand-ins for the bridge's producer and MQTT client, and small builders, for the
broker-free bridge tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from paho.mqtt.enums import MQTTErrorCode

from bridge._mqtt import Message
from bridge.delivery import Delivery
from bridge.metrics import BridgeMetrics
from bridge.runtime import Bridge
from bridge.settings import BridgeSettings
from bridge.translate import KafkaRecord
from iotml.core import headers as h
from iotml.core.eventtime import now_ms

TOPIC = b"sensors/s1/dev-1/temperature"


BOOM = b"boom"  # the payload the injected parser fails on


HOLD = "hold"  # a delivery report the stand-in producer keeps back


def reading(seq: int) -> bytes:
    return b'{"temperature": 20.5, "seq": %d}' % seq


def message(payload: bytes, mid: int = 1, topic: bytes = TOPIC, props: Any = None) -> Message:
    return Message(topic, payload, 1, False, mid, props)


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
