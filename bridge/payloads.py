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

Anything else raises :class:`~iotml.core.errors.RecordError` with one of the :data:`REASONS`,
and nothing else is raised, whatever the bytes. JSON is read strictly
(:func:`~iotml.core.records.decode_json`): a key named twice in an object is
``duplicate_key`` rather than last-one-wins, and so is a metric given twice (top level,
``value`` and ``metrics``). A ``device_id`` in the payload must keep the device-id contract
(:func:`~iotml.core.records.check_device_id`) even when the topic names the device.
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
from iotml.core.identifiers import MAX_ID_LENGTH, check_device_id, check_metric_name
from iotml.core.records import SCHEMA_VERSION, Reading
from iotml.core.strictjson import decode_json

#: Every reason code the bridge dead-letters with.
REASONS = (
    "no_route",  # no route matches the MQTT topic
    "invalid_topic",  # the MQTT topic is not UTF-8
    "bad_kafka_topic",  # the route's Kafka topic template makes an invalid topic name
    "oversize",  # payload longer than IOTML_MAX_PAYLOAD_BYTES
    "empty_payload",
    "invalid_utf8",  # not UTF-8 (overlong forms, encoded surrogates...) or a lone \ud800 escape
    "invalid_json",  # not JSON (syntax, BOM, trailing data)
    "too_deep",  # arrays/objects nested more than 32 deep
    "duplicate_key",  # a key twice in an object, or a metric given twice
    "wrong_type",  # e.g. a string where a number belongs, an array payload
    "number_out_of_range",  # a number beyond the range of a double, e.g. a 400-digit integer
    "not_finite",  # NaN or +/-Infinity
    "no_metric",  # no numeric metric (or a bare number on a topic without {metric})
    "bad_metric_name",  # empty, longer than 256 characters, or with a control character
    "no_device",  # neither the topic nor the payload names the device
    "bad_device_id",  # breaks the device-id contract (from the payload, topic or key template)
    "bad_timestamp",  # a timestamp that cannot be read
    "ts_too_old",  # event time older than IOTML_EVENT_MAX_AGE
    "ts_in_future",  # event time further ahead than IOTML_EVENT_MAX_FUTURE
    "kafka_rejected",  # Kafka refused the record permanently (e.g. too large)
    "unprocessable",  # handling it raised an unforeseen error (type and message in detail)
)

TS_FIELDS = frozenset(("ts", "timestamp", "time"))

_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_MAX_TS_TEXT = 64  # no epoch number or ISO 8601 time is longer


def _is_number(value: object) -> bool:
    t = type(value)
    return t is float or t is int


def parse_timestamp(value: object) -> int:
    """Epoch milliseconds from epoch s/ms/us/ns (by magnitude) or an ISO 8601 string."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_TS_TEXT:
            raise RecordError("bad_timestamp", f"timestamp of {len(text)} characters")
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise RecordError("bad_timestamp", f"cannot read timestamp {text!a}") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return int(parsed.timestamp() * 1000)
    if type(value) is int:
        try:
            float(value)
        except OverflowError:
            raise RecordError("number_out_of_range", "timestamp beyond a double") from None
    elif type(value) is not float:
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


def _metric(metrics: dict[str, float], name: str, value: object) -> None:
    t = type(value)
    if t is not float and t is not int:
        raise RecordError(
            "wrong_type", f"{name[:64]!a} must be a number, got {type(value).__name__}"
        )
    try:
        f = float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise RecordError("number_out_of_range", f"{name[:64]!a} is beyond a double") from None
    if not math.isfinite(f):
        raise RecordError("not_finite", f"{name[:64]!a} is {f}")
    if name in metrics:
        raise RecordError("duplicate_key", f"metric {name[:64]!a} given twice")
    if not (0 < len(name) <= MAX_ID_LENGTH and name.isprintable()):  # else the fast case
        check_metric_name(name)
    metrics[name] = f


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
    obj: Any = decode_json(payload, max_bytes)
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
                named = check_device_id(value, "payload device_id")
                if device is None:
                    device = named
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
    return Reading(device_id=device, ts=ts, metrics=metrics, tags=tags)


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
