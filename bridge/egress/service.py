"""``iotml egress`` at run time: one thread that reads Kafka, publishes to MQTT and commits.

Each loop turn serves the MQTT socket (PUBACKs release records in the
:class:`~bridge.egress.tracker.CommitTracker`), reads a batch of records while fewer than
``egress_max_in_flight`` messages await their PUBACK, publishes them at QoS 1 in offset
order, and every ``egress_commit_interval`` commits the offsets whose records the broker
acknowledged with everything before them. While the broker is unreachable, paho keeps the
messages (up to the cap; then reading stops) and sends them, in order, once the connection
is back; then the retained alert state is rebuilt (:mod:`bridge.egress.rebuild`). Records
that cannot be published go to the dead-letter topic (:mod:`bridge.egress.deadletters`).
Egress reads nothing until it knows it is the only instance (:mod:`bridge.egress.presence`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from paho.mqtt.enums import MQTTErrorCode

from bridge._mqtt import make_client
from bridge.egress.deadletters import MQTT_REFUSED, DeadLetters, Source
from bridge.egress.inputs import Inputs
from bridge.egress.messages import Outgoing, mqtt_properties
from bridge.egress.metrics import EgressMetrics
from bridge.egress.outbox import Outbox
from bridge.egress.presence import Presence
from bridge.egress.rebuild import Rebuild
from bridge.egress.settings import EgressSettings
from bridge.egress.tracker import CommitTracker
from bridge.errors import BridgeError
from iotml.core.deadletters import UNPROCESSABLE, describe
from iotml.core.errors import RecordError
from iotml.core.eventtime import now_ms

__all__ = ["Egress"]

log = logging.getLogger(__name__)

#: Messages in flight before the broker's CONNACK says how many it accepts (MQTT 5
#: Receive Maximum; Mosquitto's default is 20).
_FIRST_INFLIGHT = 20
_ATTACH_RETRY_S = 2.0


class Egress:
    """Build with the settings, then :meth:`run` (blocks) and :meth:`stop` from elsewhere."""

    def __init__(
        self, settings: EgressSettings, metrics: EgressMetrics | None = None, version: str = ""
    ) -> None:
        self.settings = settings
        self.metrics = metrics or EgressMetrics()
        self.tracker = CommitTracker()
        self.inputs = Inputs(settings, self.tracker, self.metrics)
        self.outbox = Outbox(settings, self.metrics, version or "unknown")
        self.rebuild = Rebuild(settings, self.inputs, self.outbox, self.metrics)
        self.dead = DeadLetters(settings, self.tracker, self.metrics)
        self.presence = Presence(settings, self.metrics)
        self._sources: dict[int, Source] = {}  # message id -> the record it publishes
        self._v5 = settings.mqtt_protocol == "5"
        self._outstanding: set[int] = set()  # message ids awaiting their PUBACK
        self.metrics.watch(lambda: len(self._outstanding))
        self._stopping = threading.Event()
        self._mqtt_up = False
        self._ever_connected = False
        self._client: Any = None
        self._backoff = settings.mqtt_reconnect_min / 1000

    # ---- readiness and control (any thread) ----

    def ready(self) -> tuple[bool, str]:
        if self._stopping.is_set():
            return False, "shutting down"
        if not self._mqtt_up:
            return False, "MQTT broker not connected"
        if not self.inputs.kafka_up:
            return False, "Kafka not reachable"
        if not self.inputs.attached:
            if not self.presence.alone:
                return False, "waiting to be the only egress instance of the group"
            return False, "Kafka topics not assigned yet"
        return True, "ok"

    def stop(self) -> None:
        """Ask :meth:`run` to stop reading, wait for the broker's acknowledgements (up to
        the shutdown timeout), commit what it acknowledged and return."""
        self._stopping.set()

    # ---- MQTT callbacks (paho calls them from our own loop turn) ----

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused the connection: %s", reason)
            return
        cap = self.settings.egress_max_in_flight
        receive_max = getattr(props, "ReceiveMaximum", None) if self._v5 else None
        client.set_max_inflight(min(cap, receive_max or cap))
        self._mqtt_up = True
        self._ever_connected = True
        self._backoff = self.settings.mqtt_reconnect_min / 1000
        self.metrics.mqtt_connected.set(1)
        log.info(
            "MQTT connected as %s; %d message(s) to send again",
            self.settings.mqtt_client_id,
            len(self._outstanding),
        )
        self.outbox.reset_announcements()
        self.rebuild.request()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self._mqtt_up:
            log.warning("MQTT connection lost (%s); keeping messages until it is back", reason)
        self._mqtt_up = False
        self.metrics.mqtt_connected.set(0)
        self.rebuild.cancel()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self._outstanding.discard(mid)
        source = self._sources.pop(mid, None)
        self.metrics.acked.inc()
        if reason is not None and reason.is_failure:
            # a refusal no retry can change (not authorised, bad topic...): holding the
            # record would stop egress on one message, so it goes to the dead letters
            self.metrics.refused.labels(str(reason)).inc()
            log.error("MQTT broker refused message %d: %s", mid, reason)
            if source is not None:
                token = self.dead.send(source, MQTT_REFUSED, f"PUBACK: {reason}")
                self.tracker.replace(mid, token)
                return
        self.tracker.ack(mid)

    # ---- the loop ----

    def run(self) -> None:
        s = self.settings
        client = make_client(
            s, s.mqtt_client_id, protocol=s.mqtt_protocol, manual_ack=False, persistent=False
        )
        client.set_max_inflight(min(s.egress_max_in_flight, _FIRST_INFLIGHT))
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        host, port, tls = s.mqtt_endpoint()
        log.info(
            "egress %s: Kafka %s (%s) -> MQTT %s:%d%s, in-flight cap %d",
            s.mqtt_client_id,
            s.kafka_bootstrap,
            ", ".join(s.input_topics()),
            host,
            port,
            " (TLS)" if tls else "",
            s.egress_max_in_flight,
        )
        next_connect = next_attach = next_commit = 0.0
        try:
            self.presence.start()
            while not self._stopping.is_set():
                now = time.monotonic()
                self.presence.check()
                self.dead.poll()
                if client.socket() is None and now >= next_connect:
                    self._connect(client, host, port)
                    next_connect = now + self._backoff
                    self._backoff = min(self._backoff * 2, s.mqtt_reconnect_max / 1000)
                if not self.inputs.attached and self.presence.alone and now >= next_attach:
                    next_attach = now + _ATTACH_RETRY_S
                    self.inputs.attach()
                busy = self._turn(client)
                if now >= next_commit:
                    next_commit = now + s.egress_commit_interval / 1000
                    self.inputs.commit()
                if not busy and client.socket() is None:
                    time.sleep(0.05)
        finally:
            self._shutdown()

    def _turn(self, client: Any) -> bool:
        """One turn: MQTT socket, rebuild, Kafka records. ``True`` if records were read."""
        if client.socket() is not None:
            rc = client.loop(timeout=0.01)  # returns as soon as PUBACKs arrive
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and client.socket() is not None:
                client.disconnect()
        room = self.settings.egress_max_in_flight - len(self._outstanding)
        if self._mqtt_up and self.inputs.attached:
            room -= self._publish_all(self.rebuild.step(room))
        if room <= 0:
            return False  # at the cap: no more records until the broker acknowledges
        records = self.inputs.read(min(room, 500), 0.01)
        for m in records:
            self._handle(m)
        return bool(records)

    def _connect(self, client: Any, host: str, port: int) -> None:
        s = self.settings
        try:
            if self._ever_connected or client._host:  # paho remembers host and port
                client.reconnect()
            elif self._v5:
                client.connect(host, port, s.mqtt_keepalive, clean_start=True)
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

    def _handle(self, m: Any) -> None:
        """Publish one record's messages (or its dead letter) and register them with the
        tracker."""
        source = Source.of(m)
        self.metrics.consumed.labels(source.topic).inc()
        try:
            out = self.outbox.for_record(source.topic, source.value, now_ms())
        except RecordError as exc:
            mids = [self.dead.send(source, exc.reason, exc.detail)]
        except Exception as exc:  # one record must never stop egress
            log.exception("unforeseen error on %s[%d]", source.topic, source.partition)
            mids = [self.dead.send(source, UNPROCESSABLE, describe(exc))]
        else:
            mids = [self._publish(o) for o in out]
            if mids:  # the record's own message comes last, after discovery configs
                self._sources[mids[-1]] = source
        self.tracker.add((source.topic, source.partition), source.offset, mids)

    def _publish_all(self, messages: list[Outgoing]) -> int:
        for out in messages:
            self._publish(out)
        return len(messages)

    def _publish(self, out: Outgoing) -> int:
        props = mqtt_properties(out) if self._v5 else None
        info = self._client.publish(
            out.topic, out.payload, qos=1, retain=out.retain, properties=props
        )
        # Without a connection (NO_CONN, CONN_LOST) paho keeps the message and sends it
        # after the next CONNACK; only a full queue (never: it is unbounded) drops it.
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            raise BridgeError(f"paho's queue refused a message for {out.topic}")
        self._outstanding.add(info.mid)
        self.metrics.published.labels(out.kind).inc()
        return int(info.mid)

    def _shutdown(self) -> None:
        """Wait for the PUBACKs of what was published, commit, disconnect."""
        client = self._client
        deadline = time.monotonic() + self.settings.shutdown_timeout / 1000
        self.rebuild.cancel()
        try:
            while (
                client is not None
                and self._outstanding
                and self._mqtt_up
                and time.monotonic() < deadline
            ):
                client.loop(timeout=0.02)
            self.dead.flush(max(0.0, deadline - time.monotonic()))
            if self.inputs.attached:
                self.inputs.commit(wait=True)
            left = len(self._outstanding) + self.dead.pending
            self._mqtt_up = False
            if client is not None and client.socket() is not None:
                client.disconnect()
            if left:
                log.warning(
                    "stopped: %d message(s) not acknowledged by the MQTT broker (or dead "
                    "letters by Kafka); their records were not committed and are handled "
                    "again at the next start",
                    left,
                )
            else:
                log.info("stopped cleanly: every message published was acknowledged")
        finally:
            self.inputs.close()
            self.presence.close()
            self.dead.close(0)
            self.metrics.mqtt_connected.set(0)
