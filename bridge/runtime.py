"""The bridge at run time: one thread that reads MQTT, produces to Kafka and acks.

Flow per loop turn: read what the socket has (:class:`bridge._mqtt.BulkClient` appends
each PUBLISH to a list), turn that batch into Kafka records (:mod:`bridge.translate`),
produce them and serve Kafka delivery reports (:mod:`bridge.delivery`), then
acknowledge, in receive order, every message whose batch and all earlier batches Kafka
has confirmed (:mod:`bridge.acks`). The broker never sends more than ``max_in_flight``
unacknowledged messages (MQTT 5 Receive Maximum) and the bridge reads no more than that
either, so while Kafka is down the backlog waits in the broker's persistent session.
This module owns the MQTT connection (reconnecting with backoff) and the shutdown, which
acknowledges exactly the messages Kafka confirmed (in order) and leaves every other one
unacknowledged in the broker's persistent session for the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from bridge._mqtt import BulkClient, Message, connect_properties, make_client
from bridge.delivery import Delivery
from bridge.metrics import BridgeMetrics
from bridge.routes import RouteTable
from bridge.settings import BridgeSettings
from bridge.translate import Translator
from iotml.core.eventtime import now_ms

__all__ = ["Bridge"]

log = logging.getLogger(__name__)


class Bridge:
    """Build with the settings, then :meth:`run` (blocks) and :meth:`stop` from elsewhere."""

    def __init__(self, settings: BridgeSettings, metrics: BridgeMetrics | None = None) -> None:
        self.settings = settings
        self.routes = RouteTable.parse(settings.routes, settings.topic_readings)
        self.metrics = metrics or BridgeMetrics()
        self.delivery = Delivery(settings, self.metrics)
        self.acks = self.delivery.acks
        self.metrics.watch(lambda: self.acks.in_flight)
        self.translator = Translator(
            self.routes,
            settings.topic_readings_dlq,
            settings.event_range(),
            settings.max_payload_bytes,
        )
        self._inbox: list[Message] = []
        self._stopping = threading.Event()
        self._generation = 0
        self._mqtt_up = False
        self._client: BulkClient | None = None
        self._ever_connected = False
        self._backoff = settings.mqtt_reconnect_min / 1000
        self._read = 0  # messages read
        self._acked = 0  # confirmed by Kafka and acknowledged (QoS 0: nothing to ack)
        self._confirmed_unacked = 0  # confirmed after their MQTT connection was lost

    # ---- readiness and control (any thread) ----

    def ready(self) -> tuple[bool, str]:
        if self._stopping.is_set():
            return False, "shutting down"
        if not self._mqtt_up:
            return False, "MQTT broker not connected"
        if not self.delivery.kafka_up:
            return False, "Kafka not reachable"
        return True, "ok"

    def stop(self) -> None:
        """Ask :meth:`run` to stop taking messages, wait for Kafka (up to the shutdown
        timeout), ack what it confirmed and return."""
        self._stopping.set()

    @property
    def subscriptions(self) -> list[str]:
        group = self.settings.mqtt_share_group
        filters = self.settings.mqtt_subscribe or self.routes.mqtt_filters
        return [f"$share/{group}/{f}" for f in filters] if group else filters

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
        fixed = [r.kafka_topic for r in self.routes.routes if "{" not in r.kafka_topic]
        self.delivery.start(fixed)  # templated topics are only known once a message names them
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
        batch = self.acks.open([m.mid for m in msgs if m.qos], len(msgs), self._generation)
        self._read += len(msgs)
        self.metrics.received.inc(len(msgs))
        self.delivery.send(self.translator.translate(msgs, now_ms()), batch)

    def _pump(self, timeout: float) -> None:
        """Serve Kafka delivery reports, then ack what Kafka confirmed, in receive order."""
        client = self._client
        assert client is not None
        generation = self._generation if self._mqtt_up else -1
        mids: list[int] = []
        for batch in self.delivery.confirmed(timeout):
            if batch.generation == generation:
                mids.extend(batch.mids)
                self._acked += batch.size
            else:
                self.metrics.redeliveries.inc(len(batch.mids))
                self._confirmed_unacked += len(batch.mids)
                self._acked += batch.size - len(batch.mids)
        if mids:
            client.ack_many(mids)
            self.metrics.acked.inc(len(mids))

    def _shutdown(self) -> None:
        """Produce what was read, wait for Kafka, ack what it confirmed, disconnect.

        Only the confirmed prefix is acknowledged (MQTT acks go in receive order): a message
        Kafka has not confirmed within ``shutdown_timeout``, or one after it, stays
        unacknowledged and the broker redelivers it at the next start.
        """
        client = self._client
        if not self.delivery.started:
            return
        try:
            deadline = time.monotonic() + self.settings.shutdown_timeout / 1000
            if self._inbox:
                self._process()
            while self.acks.in_flight and time.monotonic() < deadline:
                self._pump(0.02)
            unreleased = self.acks.unreleased()
            self._mqtt_up = False  # a disconnect we asked for: not worth a warning
            if client is not None and client.socket() is not None:
                client.disconnect()
            self.delivery.flush(max(0.0, deadline - time.monotonic()))
            self._log_stop(*unreleased)
        finally:
            self._mqtt_up = False
            self.metrics.mqtt_connected.set(0)

    def _log_stop(self, unconfirmed: int, unconfirmed_qos1: int) -> None:
        """The last log line: what was acknowledged and what the next start gets again."""
        left = unconfirmed_qos1 + self._confirmed_unacked
        if not unconfirmed and not self._confirmed_unacked:
            log.info(
                "stopped cleanly: all %d message(s) read were confirmed by Kafka and acked",
                self._read,
            )
            return
        lost_qos0 = unconfirmed - unconfirmed_qos1
        log.warning(
            "stopped: %d of %d message(s) read were confirmed by Kafka and acked; %d left "
            "unacked in the broker's session for the next start (%d not confirmed by Kafka, "
            "or behind one that was not, within the %gs shutdown timeout; %d confirmed "
            "after their MQTT connection was lost)%s",
            self._acked,
            self._read,
            left,
            unconfirmed_qos1,
            self.settings.shutdown_timeout / 1000,
            self._confirmed_unacked,
            f"; {lost_qos0} QoS 0 message(s) not confirmed, which MQTT never redelivers"
            if lost_qos0
            else "",
        )
