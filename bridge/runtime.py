"""The bridge at run time: one thread that reads MQTT, produces to Kafka and acks.

Flow per loop turn: read what the socket has (:class:`bridge._mqtt.BulkClient` appends
each PUBLISH to a list), turn that batch into Kafka records (pure functions from
:mod:`bridge.routes` and :mod:`bridge.payloads`), serve Kafka delivery reports, then
acknowledge, in receive order, every message whose batch and all earlier batches Kafka
has confirmed (:mod:`bridge.acks`). The broker never sends more than ``max_in_flight``
unacknowledged messages (MQTT 5 Receive Maximum) and the bridge reads no more than that
either, so while Kafka is down the backlog waits in the broker's persistent session.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from bridge._mqtt import BulkClient, Message, connect_properties, make_client
from bridge.acks import AckBatch, AckQueue
from bridge.errors import BridgeError
from bridge.metrics import BridgeMetrics
from bridge.payloads import encode_reading, parse_payload
from bridge.routes import RouteTable, Target
from bridge.settings import BridgeSettings
from iotml.core import headers as h
from iotml.core.errors import RecordError
from iotml.core.eventtime import now_ms
from iotml.core.records import DeadLetter

log = logging.getLogger(__name__)

_QOS = (b"0", b"1", b"2")
_RETAIN = (b"0", b"1")
#: Delivery errors no retry can fix: the record goes to the dead-letter topic instead.
_PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError._INVALID_ARG,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
    }
)


def _property_headers(props: Any) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    content_type = getattr(props, "ContentType", None)
    if content_type:
        out.append((h.MQTT_CONTENT_TYPE, str(content_type).encode()))
    for name, value in getattr(props, "UserProperty", None) or ():
        out.append((h.MQTT_USER_PROPERTY_PREFIX + name, str(value).encode()))
    return out


class Bridge:
    """Build with the settings, then :meth:`run` (blocks) and :meth:`stop` from elsewhere."""

    def __init__(self, settings: BridgeSettings, metrics: BridgeMetrics | None = None) -> None:
        self.settings = settings
        self.routes = RouteTable.parse(settings.routes, settings.topic_readings)
        self.metrics = metrics or BridgeMetrics()
        self.acks = AckQueue()
        self.metrics.watch(lambda: self.acks.in_flight)
        self._event_range = settings.event_range()
        self._inbox: list[Message] = []
        self._stopping = threading.Event()
        self._generation = 0
        self._mqtt_up = False
        self._kafka_up = False
        self._client: BulkClient | None = None
        self._producer: Producer | None = None
        self._ever_connected = False
        self._delayed: list[tuple[float, AckBatch, Any]] = []

    # ---- readiness and control (any thread) ----

    def ready(self) -> tuple[bool, str]:
        if self._stopping.is_set():
            return False, "shutting down"
        if not self._mqtt_up:
            return False, "MQTT broker not connected"
        if not self._kafka_up:
            return False, "Kafka not reachable"
        return True, "ok"

    def stop(self) -> None:
        """Ask :meth:`run` to stop taking messages, flush Kafka, ack and return."""
        self._stopping.set()

    @property
    def subscriptions(self) -> list[str]:
        group = self.settings.mqtt_share_group
        filters = self.settings.mqtt_subscribe or self.routes.mqtt_filters
        return [f"$share/{group}/{f}" for f in filters] if group else filters

    # ---- Kafka ----

    def _producer_config(self) -> dict[str, Any]:
        s = self.settings
        return {
            **s.kafka_config(),
            "client.id": s.mqtt_client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": s.kafka_linger,
            "compression.type": s.kafka_compression,
            "batch.num.messages": 10_000,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": max(100_000, 4 * s.max_in_flight),
            "message.timeout.ms": s.kafka_delivery_timeout,
            "statistics.interval.ms": 2_000,
            "error_cb": self._on_kafka_error,
            "stats_cb": self._on_kafka_stats,
            "logger": logging.getLogger("bridge.kafka"),
        }

    def _on_kafka_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._set_kafka(False)
        if err.fatal():
            log.error("Kafka producer fatal error: %s", err)
        elif err.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            log.warning("Kafka: %s", err)  # connection failures: librdkafka logs them

    def _on_kafka_stats(self, stats_json: str) -> None:
        try:
            brokers = json.loads(stats_json).get("brokers", {})
        except ValueError:
            return
        self._set_kafka(any(b.get("state") == "UP" for b in brokers.values()))

    def _set_kafka(self, up: bool) -> None:
        if up != self._kafka_up:
            log.info("Kafka %s", "reachable" if up else "unreachable: holding MQTT acks")
        self._kafka_up = up
        self.metrics.kafka_connected.set(1 if up else 0)

    def _check_topics(self, producer: Producer) -> None:
        try:
            md = producer.list_topics(timeout=2)
        except KafkaException as exc:
            log.warning("Kafka not reachable yet (%s); will keep trying", exc)
            return
        self._set_kafka(True)
        wanted = {self.settings.topic_readings_dlq} | {
            r.kafka_topic for r in self.routes.routes if "{" not in r.kafka_topic
        }
        missing = sorted(t for t in wanted if t not in md.topics)
        if missing:
            log.warning(
                "Kafka topics %s do not exist: create them with `iotml topics ensure`", missing
            )

    # ---- MQTT callbacks (paho calls them from our own loop turn) ----

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused the connection: %s", reason)
            return
        self._generation += 1
        self._mqtt_up = True
        self._ever_connected = True
        self._backoff = self.settings.mqtt_reconnect_min / 1000
        self.metrics.mqtt_connected.set(1)
        session = bool(getattr(flags, "session_present", False))
        log.info(
            "MQTT connected as %s (%s session); subscribing to %s",
            self.settings.mqtt_client_id,
            "resumed" if session else "new",
            ", ".join(self.subscriptions),
        )
        if self.settings.mqtt_protocol == "5":
            client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.subscriptions])
        else:
            client.subscribe([(f, 1) for f in self.subscriptions])

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self._mqtt_up:
            log.warning("MQTT connection lost (%s)", reason)
        self._mqtt_up = False
        self.metrics.mqtt_connected.set(0)

    # ---- the loop ----

    def run(self) -> None:
        s = self.settings
        self._producer = Producer(self._producer_config())
        self._check_topics(self._producer)
        client = make_client(s, s.mqtt_client_id, protocol=s.mqtt_protocol)
        client.on_messages = self._inbox.append
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._client = client
        host, port, tls = s.mqtt_endpoint()
        log.info(
            "bridge %s: MQTT %s:%d%s -> Kafka %s, %d route(s), in-flight cap %d",
            s.mqtt_client_id,
            host,
            port,
            " (TLS)" if tls else "",
            s.kafka_bootstrap,
            len(self.routes.routes),
            s.max_in_flight,
        )
        self._backoff = s.mqtt_reconnect_min / 1000
        next_attempt = 0.0
        cap = s.max_in_flight
        try:
            while not self._stopping.is_set():
                if client.socket() is None:
                    if time.monotonic() >= next_attempt:
                        # Back off after every attempt, not only when the socket failed to
                        # open: a broker that refuses the CONNACK (bad password, not
                        # authorised) closes a socket that did open. A CONNACK that succeeds
                        # resets the delay (_on_connect).
                        self._connect(client, host, port)
                        next_attempt = time.monotonic() + self._backoff
                        self._backoff = min(self._backoff * 2, s.mqtt_reconnect_max / 1000)
                    self._pump(0.05)
                    continue
                room = cap - self.acks.in_flight
                if room <= 0:
                    # At the cap: acks out, nothing in. Brokers should keep to Receive
                    # Maximum, but Mosquitto 2.0 overshoots it while flushing a backlog.
                    rc = client.loop_write()
                    if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                        rc = client.loop_misc()
                    self._pump(0.005)
                else:
                    client.read_budget = min(room, 2000)
                    if client.buffered():
                        rc = client.loop_read()  # bytes already read: no select()
                        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                            rc = client.loop_misc()
                    else:
                        rc = client.loop(timeout=0.001 if self.acks.in_flight else 0.05)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and client.socket() is not None:
                    client.disconnect()
                if self._inbox:
                    self._process()
                self._pump(0)
        finally:
            self._shutdown()

    def _connect(self, client: BulkClient, host: str, port: int) -> None:
        s = self.settings
        try:
            if self._ever_connected or client._host:  # paho remembers host/port
                client.reconnect()
            elif s.mqtt_protocol == "5":
                client.connect(
                    host,
                    port,
                    s.mqtt_keepalive,
                    clean_start=False,
                    properties=connect_properties(s.mqtt_session_expiry // 1000, s.max_in_flight),
                )
            else:
                client.connect(host, port, s.mqtt_keepalive)
        except (OSError, ValueError) as exc:
            log.warning(
                "MQTT connect to %s:%d failed: %s; retrying in %.1fs",
                host,
                port,
                exc,
                self._backoff,
            )

    def _process(self) -> None:
        """Turn the messages read in this turn into Kafka records (one ack batch)."""
        msgs, self._inbox = self._inbox, []
        if self._client is not None:
            self._client.on_messages = self._inbox.append
        received = now_ms()
        received_b = str(received).encode()
        batch = self.acks.open([m.mid for m in msgs if m.qos], len(msgs), self._generation)
        delivered = batch.delivered
        produce = self._produce
        lookup = self.routes.lookup
        event_range, max_bytes = self._event_range, self.settings.max_payload_bytes
        topic_h, qos_h, retain_h, recv_h = h.MQTT_TOPIC, h.MQTT_QOS, h.MQTT_RETAIN, h.RECEIVED_AT
        readings = 0
        for m in msgs:
            raw_topic = m.topic
            headers = [
                (topic_h, raw_topic),
                (qos_h, _QOS[m.qos]),
                (retain_h, _RETAIN[m.retain]),
                (recv_h, received_b),
            ]
            props = m.properties
            if props is not None and (
                getattr(props, "UserProperty", None) or getattr(props, "ContentType", None)
            ):
                headers.extend(_property_headers(props))
            target: Target | None = None
            try:
                try:
                    target = lookup(raw_topic)
                except UnicodeDecodeError:
                    raise RecordError("invalid_topic", "MQTT topic is not UTF-8") from None
                if target is None:
                    raise RecordError("no_route", "no route matches the MQTT topic")
                reading = parse_payload(m.payload, target, received, event_range, max_bytes)
            except RecordError as exc:
                self._dead_letter(m, exc, received, target, headers, batch)
                continue
            produce(
                target.kafka_topic,
                encode_reading(reading),
                target.key or reading.device_id.encode(),
                reading.ts,
                headers,
                delivered,
            )
            readings += 1
        batch.remaining += readings + batch.dead
        batch.readings = readings
        self.metrics.received.inc(len(msgs))

    def _produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        timestamp: int,
        headers: list[tuple[str, bytes]],
        on_delivery: Any,
    ) -> None:
        producer = self._producer
        assert producer is not None
        while True:
            try:
                producer.produce(
                    topic, value, key, timestamp=timestamp, headers=headers, on_delivery=on_delivery
                )
                return
            except BufferError:
                producer.poll(0.01)  # local queue full: serve delivery reports first

    def _dead_letter(
        self,
        m: Message,
        exc: RecordError,
        received: int,
        target: Target | None,
        headers: list[tuple[str, bytes]],
        batch: AckBatch,
    ) -> None:
        dl = DeadLetter(
            reason=exc.reason,
            payload=m.payload,
            received_at=received,
            detail=exc.detail,
            mqtt_topic=m.topic.decode("utf-8", "replace"),
        )
        extra = [(k, v) for k, v in headers if k not in (h.MQTT_TOPIC, h.RECEIVED_AT)]
        self._produce(
            self.settings.topic_readings_dlq,
            m.payload,
            target.key if target else None,
            received,
            dl.headers() + extra,
            batch.delivered,
        )
        self.metrics.dead_letters.labels(exc.reason).inc()
        batch.dead += 1

    def _pump(self, timeout: float) -> None:
        """Serve Kafka delivery reports, retry failures, release acks in order."""
        producer, client = self._producer, self._client
        assert producer is not None and client is not None
        producer.poll(timeout)
        if self.acks.failures or self._delayed:
            self._retry_failures()
        mids: list[int] = []
        published = 0
        generation = self._generation if self._mqtt_up else -1
        now = time.monotonic()
        observe = self.metrics.latency.observe
        for batch in self.acks.ready():
            published += batch.readings
            observe(now - batch.started)
            if batch.generation == generation:
                mids.extend(batch.mids)
            else:
                self.metrics.redeliveries.inc(len(batch.mids))
        if published:
            self.metrics.published.inc(published)
            if not self._kafka_up:
                self._set_kafka(True)
        if mids:
            client.ack_many(mids)
            self.metrics.acked.inc(len(mids))

    def _retry_failures(self) -> None:
        failures = list(self.acks.failures)
        self.acks.failures.clear()
        now = time.monotonic()
        due = [(b, m) for t, b, m in self._delayed if t <= now]
        self._delayed = [d for d in self._delayed if d[0] > now]
        for batch, msg in due:
            self._reproduce(batch, msg)
        dlq = self.settings.topic_readings_dlq
        for batch, err, msg in failures:
            if err.fatal():
                raise BridgeError(f"Kafka producer fatal error: {err}")
            self.metrics.kafka_retries.inc()
            if err.code() not in _PERMANENT:
                log.warning("Kafka delivery failed (%s); producing the record again", err)
                self._reproduce(batch, msg)
            elif msg.topic() != dlq:
                log.error(
                    "Kafka rejected a record for %s (%s): dead-lettering it", msg.topic(), err
                )
                headers = (msg.headers() or []) + h.encode(
                    {h.ERROR_REASON: "kafka_rejected", h.ERROR_DETAIL: str(err)[:1000]}
                )
                self.metrics.dead_letters.labels("kafka_rejected").inc()
                self._produce(dlq, msg.value(), msg.key(), now_ms(), headers, batch.delivered)
            else:
                log.error("Kafka rejected a dead letter (%s); retrying in 1s, not acking", err)
                self._delayed.append((now + 1.0, batch, msg))

    def _reproduce(self, batch: AckBatch, msg: Any) -> None:
        self._produce(
            msg.topic(),
            msg.value(),
            msg.key(),
            msg.timestamp()[1],
            msg.headers() or [],
            batch.delivered,
        )

    def _shutdown(self) -> None:
        """Produce what was read, wait for Kafka, ack what it confirmed, disconnect."""
        client, producer = self._client, self._producer
        if producer is None:
            return
        try:
            deadline = time.monotonic() + self.settings.shutdown_timeout / 1000
            if self._inbox:
                self._process()
            while self.acks.in_flight and time.monotonic() < deadline:
                self._pump(0.02)
            left = self.acks.in_flight
            self._mqtt_up = False  # a disconnect we asked for: not worth a warning
            if client is not None and client.socket() is not None:
                client.disconnect()
            producer.flush(max(0.0, deadline - time.monotonic()))
            if left:
                log.warning(
                    "stopped with %d message(s) unacknowledged: the broker redelivers them", left
                )
            else:
                log.info("stopped cleanly: every message read was confirmed by Kafka and acked")
        finally:
            self._mqtt_up = False
            self.metrics.mqtt_connected.set(0)
