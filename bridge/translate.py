"""MQTT messages -> Kafka records: a reading for each routed message, a dead letter for the rest.

Pure: no network and no clock (the caller passes the receive time). Every record carries
the MQTT topic, QoS, retain flag, receive time and MQTT 5 properties as headers; a dead
letter keeps the raw payload and adds the reason (:class:`~iotml.core.records.DeadLetter`).
Whatever a message holds, translating it never raises: a failure nobody foresaw becomes a
dead letter with reason ``unprocessable`` and the exception in the detail header.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import Any, NamedTuple

from bridge._mqtt import Message
from bridge.payloads import encode_reading, parse_payload
from bridge.routes import RouteTable, Target
from iotml.core import headers as h
from iotml.core.deadletters import UNPROCESSABLE, DeadLetter, describe, header_bytes
from iotml.core.errors import RecordError
from iotml.core.eventtime import EventTimeRange

__all__ = ["KafkaRecord", "Translator", "mqtt_topic_of", "property_headers"]

_QOS = (b"0", b"1", b"2")
_RETAIN = (b"0", b"1")
#: Headers a dead letter writes itself (:meth:`DeadLetter.headers`), not copied from the message.
_DEAD_LETTER_OWN = (h.MQTT_TOPIC, h.RECEIVED_AT)


class KafkaRecord(NamedTuple):
    """One record to produce. ``reason`` is set on a dead letter and ``None`` on a reading."""

    topic: str
    value: bytes
    key: bytes | None
    timestamp: int
    headers: h.Headers
    reason: str | None = None


def property_headers(props: Any) -> h.Headers:
    """Headers for the MQTT 5 content type and user properties of a message (may be empty)."""
    out: h.Headers = []
    if props is None:
        return out
    content_type = getattr(props, "ContentType", None)
    if content_type:
        out.append((h.MQTT_CONTENT_TYPE, header_bytes(content_type, 65_535)))
    for name, value in getattr(props, "UserProperty", None) or ():
        name_text = header_bytes(name, 65_535).decode()
        out.append((h.MQTT_USER_PROPERTY_PREFIX + name_text, header_bytes(value, 65_535)))
    return out


def mqtt_topic_of(headers: h.Headers) -> str:
    """The MQTT topic in a record's headers, quoted and cut to 200 characters, for logs."""
    for name, value in headers:
        if name == h.MQTT_TOPIC:
            return repr(bytes(value or b"").decode("utf-8", "replace")[:200])
    return "(unknown)"


class Translator:
    """Turns the messages of one read into the records to produce, in receive order."""

    def __init__(
        self,
        routes: RouteTable,
        dead_letter_topic: str,
        event_range: EventTimeRange,
        max_payload_bytes: int,
    ) -> None:
        self.routes = routes
        self.dead_letter_topic = dead_letter_topic
        self.event_range = event_range
        self.max_payload_bytes = max_payload_bytes

    def translate(self, msgs: Iterable[Message], received: int) -> Iterator[KafkaRecord]:
        """One record per message, lazily: its reading, or a dead letter saying why there is
        none. (Lazy so that each record can be produced and freed before the next is built.)"""
        received_b = str(received).encode()
        record = self._record
        for m in msgs:
            try:
                out = record(m, received, received_b)
            except Exception as exc:  # one message can never stop the bridge
                out = self._unprocessable(m, exc, received_b)
            yield out

    def _record(self, m: Message, received: int, received_b: bytes) -> KafkaRecord:
        raw_topic = m.topic
        headers = [
            (h.MQTT_TOPIC, raw_topic),
            (h.MQTT_QOS, _QOS[m.qos]),
            (h.MQTT_RETAIN, _RETAIN[m.retain]),
            (h.RECEIVED_AT, received_b),
        ]
        props = m.properties
        if props is not None and (
            getattr(props, "UserProperty", None) or getattr(props, "ContentType", None)
        ):
            headers.extend(property_headers(props))
        target: Target | None = None
        try:
            try:
                target = self.routes.lookup(raw_topic)
            except UnicodeDecodeError:
                raise RecordError("invalid_topic", "MQTT topic is not UTF-8") from None
            if target is None:
                raise RecordError("no_route", "no route matches the MQTT topic")
            reading = parse_payload(
                m.payload, target, received, self.event_range, self.max_payload_bytes
            )
        except RecordError as exc:
            return self._dead_letter(m, exc, received, target, headers)
        return KafkaRecord(
            target.kafka_topic,
            encode_reading(reading),
            target.key or reading.device_id.encode(),
            reading.ts,
            headers,
        )

    def _dead_letter(
        self,
        m: Message,
        exc: RecordError,
        received: int,
        target: Target | None,
        headers: h.Headers,
    ) -> KafkaRecord:
        """The dead letter for ``m``: its raw payload, stamped with the receive time."""
        dl = DeadLetter(
            reason=exc.reason,
            payload=m.payload,
            received_at=received,
            detail=header_bytes(exc.detail).decode(),
            mqtt_topic=m.topic.decode("utf-8", "replace"),
        )
        extra = [(k, v) for k, v in headers if k not in _DEAD_LETTER_OWN]
        return KafkaRecord(
            self.dead_letter_topic,
            m.payload,
            target.key if target else None,
            received,
            dl.headers() + extra,
            exc.reason,
        )

    def _unprocessable(self, m: Message, exc: Exception, received_b: bytes) -> KafkaRecord:
        """The dead letter of a message whose handling raised ``exc``, built only from
        what cannot fail: raw bytes and text encoded with every character escaped."""
        topic = m.topic if isinstance(m.topic, bytes) else header_bytes(m.topic, 65_535)
        headers = [
            (h.ERROR_REASON, UNPROCESSABLE.encode()),
            (h.ERROR_DETAIL, header_bytes(describe(exc))),
            (h.RECEIVED_AT, received_b),
            (h.MQTT_TOPIC, topic.decode("utf-8", "replace").encode()),
            (h.MQTT_QOS, header_bytes(m.qos)),
            (h.MQTT_RETAIN, b"1" if m.retain else b"0"),
        ]
        with suppress(Exception):  # properties are context; the payload and reason matter
            headers.extend(property_headers(m.properties))
        payload = m.payload if isinstance(m.payload, bytes) else header_bytes(m.payload, 65_535)
        return KafkaRecord(
            self.dead_letter_topic, payload, None, int(received_b), headers, UNPROCESSABLE
        )
