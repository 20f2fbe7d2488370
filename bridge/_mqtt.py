"""paho-mqtt 2.x, tuned for a subscriber that acknowledges in bulk.

Stock paho reads every packet with three ``recv()`` calls, handles one packet per
``select()`` when it has nothing outgoing, and writes each PUBACK with its own ``send()``.
At tens of thousands of messages a second those system calls cost more than the bridge's
own work, so :class:`BulkClient` reads the socket in 256 KiB chunks, drains everything
readable in one ``loop_read``, and writes a run of PUBACKs as one buffer. These overrides
use paho 2.x internals (pinned ``<3`` in pyproject); a unit test checks them against paho's
own packets.
"""

from __future__ import annotations

import ssl
import struct
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from iotml.settings import MqttSettings

_PUBACK = 0x40
_READ_CHUNK = 256 * 1024


def puback_packets(mids: list[int]) -> bytes:
    """The PUBACK packets (QoS 1, success) for ``mids``, in order, as paho would write them."""
    return struct.pack(f">{len(mids)}I", *[0x40020000 | mid for mid in mids])


class BulkClient(mqtt.Client):
    """A paho client with chunked reads and :meth:`ack_many`. Drive it with ``loop()``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0

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
        # Read until the socket would block, so that nothing is left in the buffer that a
        # select() on the socket would not see. The broker's in-flight window (Receive
        # Maximum) bounds how much that is.
        while True:
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf, self._rpos = b"", 0
        return super().reconnect()

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


def user_properties(props: Any) -> list[tuple[str, str]]:
    """MQTT 5 user properties of a received message (empty when there are none)."""
    if props is None:
        return []
    pairs = getattr(props, "UserProperty", None)
    return list(pairs) if pairs else []
