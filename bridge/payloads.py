"""Turning an MQTT payload into the canonical :class:`~iotml.core.records.Reading`: pure functions.

Accepted payloads:

* a JSON object with one or more numeric metrics, e.g. ``{"temperature": 71.2, "ts": ...}``.
  ``ts`` (or ``timestamp``/``time``) is optional: epoch seconds, milliseconds, microseconds
  or nanoseconds (told apart by magnitude), or an ISO 8601 string (UTC when it has no
  offset); without one the receive time is used. A ``value`` field is named after the
  topic's ``{metric}`` segment. ``device_id`` names the device when the route's pattern has
  no ``{device}``; ``metrics`` (an object of numbers) and ``tags`` (an object of strings)
  are merged in. Any other non-numeric field is an error, never silently dropped.
* a bare number (``21.5``) when the topic names the metric.

Anything else raises :class:`~iotml.core.errors.RecordError` with one of the :data:`REASONS`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bridge.routes import Target
from iotml.core.errors import RecordError
from iotml.core.eventtime import EventTimeRange
from iotml.core.records import MAX_ID_LENGTH, SCHEMA_VERSION, Reading

#: Every reason code the bridge dead-letters with.
REASONS = (
    "no_route",  # no route matches the MQTT topic
    "invalid_topic",  # the MQTT topic is not UTF-8
    "oversize",  # payload longer than IOTML_MAX_PAYLOAD_BYTES
    "empty_payload",
    "invalid_json",  # not JSON, or not UTF-8
    "wrong_type",  # e.g. a string where a number belongs, an array payload
    "not_finite",  # NaN or +/-Infinity
    "no_metric",  # no numeric metric (or a bare number on a topic without {metric})
    "no_device",  # neither the topic nor the payload names the device
    "bad_timestamp",  # a timestamp that cannot be read
    "ts_too_old",  # event time older than IOTML_EVENT_MAX_AGE
    "ts_in_future",  # event time further ahead than IOTML_EVENT_MAX_FUTURE
    "kafka_rejected",  # Kafka refused the record permanently (e.g. too large)
)

TS_FIELDS = frozenset(("ts", "timestamp", "time"))


def _reject_constant(name: str) -> float:
    raise RecordError("not_finite", f"{name} is not a finite number")


_DECODE = json.JSONDecoder(parse_constant=_reject_constant).decode
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _is_number(value: object) -> bool:
    t = type(value)
    return t is float or t is int


def parse_timestamp(value: object) -> int:
    """Epoch milliseconds from epoch s/ms/us/ns (by magnitude) or an ISO 8601 string."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise RecordError("bad_timestamp", f"cannot read timestamp {text[:64]!r}") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return int(parsed.timestamp() * 1000)
    if not _is_number(value):
        raise RecordError(
            "bad_timestamp",
            f"timestamp must be a number or ISO 8601 string, got {type(value).__name__}",
        )
    assert isinstance(value, int | float)
    if not math.isfinite(value) or value <= 0:
        raise RecordError("bad_timestamp", f"timestamp {value!r} is not a positive finite number")
    if value < 1e11:  # seconds until the year 5138
        return int(value * 1000)
    if value < 1e14:
        return int(value)
    if value < 1e17:
        return int(value // 1000)
    return int(value // 1_000_000)


def _name(kind: str, value: str) -> str:
    if not value or len(value) > MAX_ID_LENGTH:
        raise RecordError("wrong_type", f"{kind} must be 1..{MAX_ID_LENGTH} characters")
    return value


def _metric(metrics: dict[str, float], name: str, value: object) -> None:
    if not _is_number(value):
        raise RecordError(
            "wrong_type", f"{name[:64]!r} must be a number, got {type(value).__name__}"
        )
    f = float(value)  # type: ignore[arg-type]
    if not math.isfinite(f):
        raise RecordError("not_finite", f"{name[:64]!r} is {f}")
    metrics[_name("metric name", name)] = f


def parse_payload(
    payload: bytes,
    target: Target,
    received_ms: int,
    event_range: EventTimeRange,
    max_bytes: int = 65536,
) -> Reading:
    """The reading carried by ``payload`` on a topic routed to ``target``."""
    if len(payload) > max_bytes:
        raise RecordError("oversize", f"{len(payload)} bytes > {max_bytes}")
    if not payload:
        raise RecordError("empty_payload", "empty payload")
    try:
        obj: Any = _DECODE(payload.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, RecordError):
            raise
        raise RecordError("invalid_json", str(exc)[:200]) from None
    except RecursionError:
        raise RecordError("invalid_json", "nested too deeply") from None
    metrics: dict[str, float] = {}
    ts = received_ms
    device = target.device
    tags: Mapping[str, str] = target.tags
    if type(obj) is dict:
        for key, value in obj.items():
            if key in TS_FIELDS:
                ts = parse_timestamp(value)
            elif key == "value" and target.metric is not None:
                _metric(metrics, target.metric, value)
            elif key == "device_id":
                if not isinstance(value, str):
                    raise RecordError("wrong_type", "device_id must be a string")
                if device is None:
                    device = value
            elif key == "metrics" and type(value) is dict:
                for name, v in value.items():
                    _metric(metrics, name, v)
            elif key == "tags" and type(value) is dict:
                if not all(isinstance(v, str) for v in value.values()):
                    raise RecordError("wrong_type", "tags must map strings to strings")
                tags = {**value, **target.tags}
            else:
                _metric(metrics, key, value)
    elif _is_number(obj):
        if target.metric is None:
            raise RecordError("no_metric", "a bare number needs a route with {metric}")
        _metric(metrics, target.metric, obj)
    else:
        raise RecordError(
            "wrong_type", f"expected a JSON object or number, got {type(obj).__name__}"
        )
    if not metrics:
        raise RecordError("no_metric", "no numeric metric in the payload")
    if device is None:
        raise RecordError("no_device", "the route has no {device} and the payload no device_id")
    reason = event_range.check(ts, received_ms)
    if reason is not None:
        raise RecordError(reason, f"event time {ts} ms, received at {received_ms} ms")
    return Reading(device_id=_name("device_id", device), ts=ts, metrics=metrics, tags=tags)


def encode_reading(reading: Reading) -> bytes:
    """``reading.to_json()``, without the copies (the bridge's hot path)."""
    return _ENCODE(
        {
            "v": SCHEMA_VERSION,
            "device_id": reading.device_id,
            "ts": reading.ts,
            "metrics": reading.metrics,
            "tags": reading.tags,
        }
    ).encode()
