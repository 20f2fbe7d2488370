"""Dead letters that always fit in a Kafka record, and the catch-all reason: pure functions
shared by the services.

A dead letter keeps the rejected input as its value, so that it can be inspected and
replayed. Kafka refuses records over its size limits (the producer's ``message.max.bytes``,
1,000,000 bytes by default, and the topic's ``max.message.bytes``), so a payload too large
is cut to a prefix and headers say so: :data:`~iotml.core.headers.ERROR_TRUNCATED`
(``true``), :data:`~iotml.core.headers.ERROR_ORIGINAL_SIZE` (bytes) and
:data:`~iotml.core.headers.ERROR_SHA256` (hex SHA-256 of the whole payload), enough to
match the dead letter with what the device sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from iotml.core import headers as h

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DETAIL_MAX_BYTES",
    "UNPROCESSABLE",
    "describe",
    "fit_dead_letter",
    "fit_payload",
    "header_bytes",
    "record_size",
    "shrink",
]

#: The catch-all reason: handling the message raised an exception nobody foresaw. The
#: detail header names the exception's type and message.
UNPROCESSABLE = "unprocessable"

#: Default size budget of a dead-letter record (payload, key and headers): about half of
#: the producer's default ``message.max.bytes``, leaving room for large headers.
DEFAULT_MAX_BYTES = 512 * 1024

#: The longest header value a dead letter's minimal form keeps (and the detail header's).
DETAIL_MAX_BYTES = 1000

# librdkafka counts a few bytes of framing per header and per record on top of the data.
_HEADER_OVERHEAD = 8
_RECORD_OVERHEAD = 128
# The three headers fit_payload adds: names, a 64-digit hash, a size and framing.
_TRUNCATION_HEADERS_SIZE = 192
# A payload cut below this is cut to nothing: a prefix that short shows nothing useful.
_SMALLEST_PREFIX = 1024

# Headers a dead letter keeps in its minimal form: what was wrong, when, and where from.
_ESSENTIAL = frozenset(
    {
        h.ERROR_REASON,
        h.ERROR_DETAIL,
        h.RECEIVED_AT,
        h.MQTT_TOPIC,
        h.SOURCE_TOPIC,
        h.SOURCE_PARTITION,
        h.SOURCE_OFFSET,
        h.ERROR_TRUNCATED,
        h.ERROR_ORIGINAL_SIZE,
        h.ERROR_SHA256,
    }
)


def header_bytes(value: object, limit: int = DETAIL_MAX_BYTES) -> bytes:
    """``value`` as a header value: UTF-8 text, anything UTF-8 cannot hold (a lone
    surrogate) backslash-escaped, cut to ``limit`` bytes on a character boundary.
    Never raises, whatever ``value`` is."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    return _cut_utf8(text.encode("utf-8", "backslashreplace"), limit)


def describe(exc: BaseException) -> str:
    """``"TypeName: message"`` for the detail header of an unprocessable message.
    Never raises (an exception's ``__str__`` may)."""
    name = type(exc).__name__
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{name}: {text}" if text else name


def fit_payload(payload: bytes, limit: int) -> tuple[bytes, h.Headers]:
    """``(payload, [])`` if it has at most ``limit`` bytes; else its first ``limit`` bytes
    and the headers saying so (truncated, original size, SHA-256 of the whole)."""
    if len(payload) <= limit:
        return payload, []
    return payload[: max(0, limit)], [
        (h.ERROR_TRUNCATED, b"true"),
        (h.ERROR_ORIGINAL_SIZE, str(len(payload)).encode()),
        (h.ERROR_SHA256, hashlib.sha256(payload).hexdigest().encode()),
    ]


def record_size(value: bytes, key: bytes | None, headers: h.Headers) -> int:
    """An upper bound of the bytes a record counts against Kafka's size limits."""
    size = _RECORD_OVERHEAD + len(value) + len(key or b"")
    for name, data in headers:
        size += _HEADER_OVERHEAD + len(name.encode("utf-8", "surrogatepass")) + len(data or b"")
    return size


def fit_dead_letter(
    value: bytes, key: bytes | None, headers: h.Headers, limit: int
) -> tuple[bytes, h.Headers]:
    """The value and headers of a dead letter whose whole record fits in ``limit`` bytes:
    unchanged if it fits, else the payload cut to the room its key and headers leave
    (:func:`fit_payload`). Headers alone over ``limit`` leave no payload; :func:`shrink`
    is the next step if Kafka still refuses the record."""
    if record_size(value, key, headers) <= limit:
        return value, headers
    room = limit - record_size(b"", key, headers) - _TRUNCATION_HEADERS_SIZE
    return _cut(value, headers, room)


def shrink(
    value: bytes, key: bytes | None, headers: h.Headers, too_large: bool
) -> tuple[bytes, bytes | None, h.Headers] | None:
    """A smaller form of a dead letter Kafka refused, or ``None`` when there is none.

    Refused as too large while it has a payload: the payload cut to a quarter (to nothing
    below 1 KiB). Otherwise: the minimal form, with no payload, no key and only the
    reason, detail, receive time, MQTT topic, source and truncation headers, each at most
    :data:`DETAIL_MAX_BYTES`. A payload cut here keeps the size and SHA-256 of the
    original, not of the prefix.
    """
    if too_large and value:
        quarter = len(value) // 4
        cut, cut_headers = _cut(value, headers, quarter if quarter >= _SMALLEST_PREFIX else 0)
        return cut, key, cut_headers
    cut, cut_headers = _cut(value, headers, 0)
    minimal = [
        (k, _cut_utf8(v or b"", DETAIL_MAX_BYTES)) for k, v in cut_headers if k in _ESSENTIAL
    ]
    if not value and key is None and minimal == headers:
        return None
    return cut, None, minimal


def _cut(value: bytes, headers: h.Headers, limit: int) -> tuple[bytes, h.Headers]:
    """``value`` cut to ``limit`` bytes; the truncation headers describe the first cut."""
    if len(value) <= limit:
        return value, headers
    if any(name == h.ERROR_TRUNCATED for name, _ in headers):
        return value[: max(0, limit)], headers
    prefix, extra = fit_payload(value, limit)
    return prefix, [*headers, *extra]


def _cut_utf8(data: bytes, limit: int) -> bytes:
    if len(data) <= limit:
        return data
    return data[:limit].decode("utf-8", "ignore").encode()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input. On Kafka the value is the raw payload (cut to a prefix when it
    would not fit, see :func:`fit_dead_letter`); the rest are headers.

    The Kafka timestamp of a dead-letter record is ``received_at`` (not the event time,
    which may be the very thing that was wrong).
    """

    reason: str
    payload: bytes
    received_at: int
    detail: str = ""
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    mqtt_topic: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def headers(self) -> h.Headers:
        """Its headers; never raises, whatever the detail holds (see :func:`header_bytes`)."""
        pairs: dict[str, object] = {
            h.ERROR_REASON: self.reason,
            h.ERROR_DETAIL: self.detail or None,
            h.RECEIVED_AT: self.received_at,
            h.SOURCE_TOPIC: self.source_topic,
            h.SOURCE_PARTITION: self.source_partition,
            h.SOURCE_OFFSET: self.source_offset,
            h.MQTT_TOPIC: self.mqtt_topic,
            **self.extra,
        }
        return [(k, header_bytes(v)) for k, v in pairs.items() if v is not None]
