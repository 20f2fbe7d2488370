"""paho-mqtt 2.x, tuned for a subscriber that acknowledges in bulk.

Stock paho spends ~80 us of Python per received PUBLISH: three ``recv()`` calls, a
``Properties`` object built from scratch (MQTT 5), a ``threading.Condition`` per message,
one ``select()`` per packet, and one ``send()`` per PUBACK. That alone caps a subscriber
below the bridge's target, so :class:`BulkClient` reads the socket in 256 KiB chunks,
decodes complete QoS 0/1 PUBLISH packets straight from the buffer into
:class:`Message` tuples (MQTT 5 properties are decoded by paho only when a message has
any), and writes a run of PUBACKs as one buffer. Every other packet (CONNACK, SUBACK,
PINGRESP, QoS 2...) goes through paho unchanged. These overrides use paho 2.x internals
(pinned ``<3`` in pyproject); unit tests check them against paho's own encoder.
"""

from __future__ import annotations

import ssl
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from iotml.core.settings import MqttSettings

_PUBACK = 0x40
_READ_CHUNK = 256 * 1024


def puback_packets(mids: list[int]) -> bytes:
    """The PUBACK packets (QoS 1, success) for ``mids``, in order, as paho would write them."""
    return struct.pack(f">{len(mids)}I", *[0x40020000 | mid for mid in mids])


class Message(NamedTuple):
    """A received PUBLISH. ``topic`` is the raw UTF-8 bytes."""

    topic: bytes
    payload: bytes
    qos: int
    retain: bool
    mid: int
    properties: Properties | None


class BulkClient(mqtt.Client):
    """A paho client with chunked reads, a fast PUBLISH path and :meth:`ack_many`.

    Received messages are passed to ``on_messages`` (a callable taking a
    :class:`Message`) instead of paho's ``on_message``. Drive it with ``loop()``; when
    :meth:`buffered` is true, call :meth:`loop_read` again before waiting on the socket.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self.on_messages: Callable[[Message], Any] = lambda m: None
        self.read_budget = 2000  # messages per loop_read, so that acks flow while busy
        self.on_message = self._from_paho

    def _from_paho(self, client: Any, userdata: Any, m: Any) -> None:
        self.on_messages(Message(m._topic, m.payload, m.qos, m.retain, m.mid, m.properties))

    def buffered(self) -> bool:
        """Whether received bytes wait in the buffer (a ``select()`` would not see them)."""
        return self._rpos < len(self._rbuf)

    def _drain_publishes(self, budget: int) -> int:
        """Handle the complete QoS 0/1 PUBLISH packets at the head of the buffer."""
        buf, pos = self._rbuf, self._rpos
        end = len(buf)
        v5 = self._protocol == mqtt.MQTTv5
        manual = self._manual_ack
        sink = self.on_messages
        acks: list[int] = []
        n = 0
        while pos < end and n < budget:
            cmd = buf[pos]
            if cmd & 0xF0 != 0x30 or cmd & 0x06 == 0x06 or cmd & 0x06 == 0x04:
                break  # not PUBLISH, or QoS 2: paho's own path
            i, length, mult = pos + 1, 0, 1
            while True:
                if i >= end or mult > 2_097_152:
                    self._rpos = pos
                    return n  # incomplete header (or malformed: paho reports it)
                byte = buf[i]
                i += 1
                length += (byte & 127) * mult
                mult *= 128
                if not byte & 128:
                    break
            if i + length > end:
                break  # the rest of the packet is not here yet
            body = buf[i : i + length]
            pos = i + length
            tlen = (body[0] << 8) | body[1]
            p = 2 + tlen
            topic = body[2:p]
            qos = (cmd >> 1) & 3
            mid = 0
            if qos:
                mid = (body[p] << 8) | body[p + 1]
                p += 2
            props = None
            if v5:
                if body[p] == 0:
                    p += 1
                else:
                    props = Properties(PacketTypes.PUBLISH)
                    _, plen = props.unpack(body[p:])
                    p += plen
            sink(Message(topic, body[p:], qos, bool(cmd & 1), mid, props))
            if qos and not manual:
                acks.append(mid)
            n += 1
        self._rpos = pos
        if n:
            with self._msgtime_mutex:
                self._last_bytes_received = mqtt.time_func()
            if acks:
                self.ack_many(acks)
        return n

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf = super()._sock_recv(max(bufsize, _READ_CHUNK))
            if not buf:
                return buf  # connection closed
            pos = 0
        end = pos + bufsize
        self._rbuf, self._rpos = buf, min(end, len(buf))
        return buf[pos:end]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        # Read until the socket would block or ``read_budget`` packets were read; the
        # caller checks buffered() before waiting in select() again.
        budget = self.read_budget
        while True:
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if budget <= 0:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            if self._in_packet["command"] == 0 and self._rpos < len(self._rbuf):
                budget -= self._drain_publishes(budget)
                if budget <= 0:
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
            rc = self._packet_read()  # anything else, through paho
            budget -= 1
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf, self._rpos = b"", 0
        return super().reconnect()

    def set_max_inflight(self, limit: int) -> None:
        """Keep at most ``limit`` outgoing QoS 1/2 messages in flight, also while connected:
        paho ignores the broker's MQTT 5 Receive Maximum and refuses to change its own limit
        on an open connection. Messages over the limit wait in paho's queue."""
        with self._out_message_mutex:
            self._max_inflight_messages = max(1, limit)

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge QoS 1 messages, in the order given (the order they arrived)."""
        if mids and self._sock is not None:
            self._packet_queue(_PUBACK, puback_packets(mids), 0, 0)


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    protocol: str = "5",
    manual_ack: bool = True,
    persistent: bool = True,
) -> BulkClient:
    """A client with TLS and credentials from ``settings`` (not yet connected)."""
    v5 = protocol == "5"
    client = BulkClient(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    _, _, tls = settings.mqtt_endpoint()
    if tls or settings.mqtt_ca or settings.mqtt_cert:
        client.tls_set(
            ca_certs=str(settings.mqtt_ca) if settings.mqtt_ca else None,
            certfile=str(settings.mqtt_cert) if settings.mqtt_cert else None,
            keyfile=str(settings.mqtt_key) if settings.mqtt_key else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    if settings.mqtt_username:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        client.username_pw_set(settings.mqtt_username, password)
    return client


def connect_properties(session_expiry_s: int, receive_maximum: int) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    props.ReceiveMaximum = receive_maximum
    return props
