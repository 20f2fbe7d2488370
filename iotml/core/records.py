"""The records that move between services, defined once.

Every record is a frozen dataclass with ``to_dict``/``to_json`` and a validating
``from_dict``/``from_json`` that raises :class:`~iotml.core.errors.RecordError` with a short
reason code. The JSON Schemas in ``iotml/core/schemas/`` describe the same shapes for
consumers in other languages; a test keeps both in step.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from iotml.core import headers as h
from iotml.core.errors import RecordError

_fast_dumps: Callable[[Any], bytes] | None
_fast_loads: Callable[[bytes], Any] | None
try:  # (de)serialising is the per-record cost of every service; orjson is ~4x faster
    from orjson import dumps as _fast_dumps
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson comes with quixstreams, not the bridge image
    _fast_loads = None
    _fast_dumps = None

SCHEMA_VERSION = 1
MAX_ID_LENGTH = 256
#: A device id is at most this many UTF-8 bytes (see :func:`check_device_id`).
MAX_DEVICE_ID_BYTES = 128
#: The deepest JSON nesting accepted; a reading (``{"metrics": {...}}``) is 2 deep.
MAX_DEPTH = 32
#: The largest record :func:`decode_json` reads by default (Kafka's default message limit).
MAX_RECORD_BYTES = 1 << 20

#: Every reason a record is rejected with by this module.
REASONS = (
    "oversize",  # longer than the byte limit
    "empty",  # no bytes at all
    "invalid_utf8",  # not UTF-8 (overlong forms, encoded surrogates...) or a lone \ud800 escape
    "invalid_json",  # not JSON (syntax, BOM, trailing data)
    "too_deep",  # arrays/objects nested deeper than MAX_DEPTH
    "duplicate_key",  # an object names the same key twice
    "number_out_of_range",  # beyond the range of a double, or an epoch time beyond int64
    "not_finite",  # NaN, Infinity or -Infinity
    "wrong_type",  # e.g. a string or boolean where a number belongs, an array record
    "unsupported_version",  # "v" is not SCHEMA_VERSION
    "no_metric",  # no metric at all
    "bad_device_id",  # breaks the device-id contract (check_device_id)
    "bad_metric_name",  # breaks the metric-name contract (check_metric_name)
)

AlertType = Literal["overheat_predicted", "anomaly", "out_of_range", "device_silent"]
AlertEvent = Literal["open", "cleared"]
ALERT_TYPES: tuple[str, ...] = ("overheat_predicted", "anomaly", "out_of_range", "device_silent")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DBL_MAX = sys.float_info.max
# C0, DEL, C1 and (lone) surrogates; a str holds a surrogate only when it is unpaired.
_CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_DEVICE_ID_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff+#/]")
_DEVICE_ID_CHARS = {
    "+": "'+' (an MQTT wildcard)",
    "#": "'#' (an MQTT wildcard)",
    "/": "'/' (the MQTT topic level separator)",
}


def _char_rule(what: str, char: str, index: int) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return f"{what} has a lone surrogate U+{code:04X} at index {index}"
    if char in _DEVICE_ID_CHARS:
        return f"{what} has {_DEVICE_ID_CHARS[char]} at index {index}"
    return f"{what} has control character U+{code:04X} at index {index}"


def check_device_id(value: object, what: str = "device_id") -> str:
    """``value`` if it is a valid device id; else :class:`RecordError` ``bad_device_id``
    (``wrong_type`` when it is not a string) with a detail naming the rule broken.

    A device id is 1-128 UTF-8 bytes with no control character (C0, DEL, C1), no lone
    surrogate and no ``+``, ``#`` or ``/``: it is the Kafka key of its records and a level
    of MQTT topics. ``what`` names the source in the detail.
    """
    if not isinstance(value, str):
        raise RecordError("wrong_type", f"{what} must be a string, got {type(value).__name__}")
    n = len(value)
    bad = _DEVICE_ID_FORBIDDEN.search(value)
    if bad is None and 0 < n <= MAX_DEVICE_ID_BYTES // 4:  # 4 bytes a character at most
        return value
    if n == 0:
        raise RecordError("bad_device_id", f"{what} is empty")
    if bad is not None:
        raise RecordError("bad_device_id", _char_rule(what, bad.group(), bad.start()))
    size = n if value.isascii() else len(value.encode())
    if size > MAX_DEVICE_ID_BYTES:
        raise RecordError(
            "bad_device_id", f"{what} is {size} UTF-8 bytes, more than {MAX_DEVICE_ID_BYTES}"
        )
    return value


def check_metric_name(value: object, what: str = "metric name") -> str:
    """``value`` if it is a valid metric name; else :class:`RecordError` ``bad_metric_name``
    (``wrong_type`` when it is not a string): 1-256 characters, no control character and no
    lone surrogate."""
    if not isinstance(value, str):
        raise RecordError("wrong_type", f"{what} must be a string, got {type(value).__name__}")
    if 0 < len(value) <= MAX_ID_LENGTH and (
        value.isprintable() or _CONTROL_OR_SURROGATE.search(value) is None
    ):
        return value
    if not value:
        raise RecordError("bad_metric_name", f"{what} is empty")
    bad = _CONTROL_OR_SURROGATE.search(value)
    if bad is not None:
        raise RecordError("bad_metric_name", _char_rule(what, bad.group(), bad.start()))
    raise RecordError(
        "bad_metric_name", f"{what} is {len(value)} characters, more than {MAX_ID_LENGTH}"
    )


# -- JSON from untrusted bytes -------------------------------------------------------------
#
# orjson is strict (UTF-8, no NaN, no lone surrogate, depth <= 1024) and fast, but silent on
# duplicate keys and on nesting under 1024. When it refuses, the standard parser runs only to
# name the reason, and only once the nesting is known to be shallow: it recurses, and a deep
# document would end in RecursionError. Without orjson (the bridge image) the standard parser
# does all the work, under the same checks.


def _std_int(text: str) -> int:
    if len(text) < 16:
        return int(text)
    if len(text) > 310:  # a double holds no integer of more than 309 digits
        raise RecordError("number_out_of_range", f"an integer of {len(text)} characters")
    n = int(text)
    if n > _DBL_MAX or n < -_DBL_MAX:
        raise RecordError("number_out_of_range", f"integer {text[:20]}... is beyond a double")
    return n


def _std_float(text: str) -> float:
    f = float(text)
    if f in (math.inf, -math.inf):
        raise RecordError("number_out_of_range", f"{text[:40]} is beyond a double")
    return f


def _std_constant(name: str) -> float:
    raise RecordError("not_finite", f"{name} is not a finite number")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RecordError("duplicate_key", f"key {key[:64]!a} appears twice")
            seen.add(key)
    return obj


# The plain decoder leaves numbers to the C scanner (number hooks cost ~0.2 us a number);
# _count_keys spots a number beyond a double it let through and the checked decoder names it.
_std_decode_plain = json.JSONDecoder(parse_constant=_std_constant).decode
_std_decode = json.JSONDecoder(
    parse_int=_std_int, parse_float=_std_float, parse_constant=_std_constant
).decode
_std_decode_unique = json.JSONDecoder(
    parse_int=_std_int,
    parse_float=_std_float,
    parse_constant=_std_constant,
    object_pairs_hook=_unique_pairs,
).decode
_TOKEN = re.compile(r'\\.|["\[\]{}]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _too_deep() -> RecordError:
    return RecordError("too_deep", f"nested more than {MAX_DEPTH} deep")


def _scan_depth(text: str) -> None:
    """Raise ``too_deep`` when ``text`` nests deeper than MAX_DEPTH (brackets in strings do
    not count). Linear, and stops at the first level too many."""
    depth = 0
    in_string = False
    for m in _TOKEN.finditer(text):
        c = m.group()
        if c == '"':
            in_string = not in_string
        elif in_string or len(c) == 2:
            continue
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
        else:
            depth -= 1


def _check_depth(obj: Any) -> None:
    """Raise ``too_deep`` when a parsed value nests deeper than MAX_DEPTH."""
    if type(obj) is not dict and type(obj) is not list:
        return
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        o, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        for v in o.values() if type(o) is dict else o:
            if type(v) is dict or type(v) is list:
                stack.append((v, depth + 1))


def _lone_surrogate(obj: Any) -> str | None:
    """The first string of ``obj`` holding a lone surrogate, except a top-level
    ``device_id`` (which :func:`check_device_id` rejects with its own reason)."""
    stack = [obj]
    while stack:
        o = stack.pop()
        if type(o) is str:
            if _SURROGATE.search(o):
                return o
        elif type(o) is dict:
            for k, v in o.items():
                if _SURROGATE.search(k):
                    return k
                if not (o is obj and k == "device_id"):
                    stack.append(v)
        elif type(o) is list:
            stack.extend(o)
    return None


def _count_keys(obj: Any) -> int:
    """The keys of every object in a value the standard parser read, or -1 when it holds a
    number beyond a double (an integer, or a float literal made infinite: NaN and Infinity
    literals never get this far). One pass for both checks."""
    t = type(obj)
    keys = 0
    if t is dict:
        keys = len(obj)
        values: Iterable[Any] = obj.values()
    elif t is list:
        values = obj
    else:
        values = (obj,)
    for v in values:
        t = type(v)
        if t is float:
            if v - v != 0.0:
                return -1
        elif t is int:
            if v > _DBL_MAX or v < -_DBL_MAX:
                return -1
        elif t is dict or t is list:
            n = _count_keys(v)  # at most MAX_DEPTH deep
            if n < 0:
                return -1
            keys += n
    return keys


def _std_loads(raw: bytes) -> tuple[Any, int]:
    """The value in ``raw`` and the keys of all its objects, by the standard parser."""
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise RecordError(
            "invalid_utf8", f"byte 0x{raw[exc.start]:02x} at offset {exc.start}: {exc.reason}"
        ) from None
    if text.startswith("\ufeff"):
        raise RecordError("invalid_json", "starts with a byte order mark (BOM)")
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _scan_depth(text)
    try:
        try:
            obj = _std_decode_plain(text)
        except RecordError:
            raise
        except ValueError:
            obj = _std_decode(text)  # a number too long to convert, or the syntax error again
        keys = _count_keys(obj)
        if keys < 0:
            _std_decode(text)  # raises number_out_of_range, naming the literal
    except RecordError:
        raise
    except ValueError as exc:
        raise RecordError("invalid_json", str(exc)[:200]) from None
    except RecursionError:  # pragma: no cover - _scan_depth bounds the nesting first
        raise _too_deep() from None
    if "\\u" in text:
        bad = _lone_surrogate(obj)
        if bad is not None:
            raise RecordError("invalid_utf8", f"lone surrogate escape in {bad[:64]!a}")
    return obj, keys


def _refused(raw: bytes, message: str) -> Any:
    """The reason orjson refused ``raw``; or the value, if only a device id's surrogate."""
    if message.startswith("depth limit exceeded"):
        raise _too_deep()
    if message.startswith("number is infinity"):
        raise RecordError("number_out_of_range", f"a number beyond a double ({message[:160]})")
    obj, _ = _std_loads(raw)  # names NaN, invalid UTF-8, BOM, syntax...
    if "surrogate" in message:
        return obj  # only a device_id holds one: check_device_id names it
    raise RecordError("invalid_json", message[:200])  # pragma: no cover - parsers disagree


def _shallow_keys(obj: Any) -> int:
    """The keys of ``obj`` and of the objects directly in it: at most all its keys."""
    keys = 0
    if type(obj) is dict:
        keys = len(obj)
        for v in obj.values():
            if type(v) is dict:
                keys += len(v)
    return keys


def _check_unique_keys(raw: bytes, keys: int) -> None:
    """Raise ``duplicate_key`` when an object in ``raw`` names a key twice.

    ``keys`` is at most the number of distinct keys parsed from ``raw``; ``raw`` has at most
    as many keys as colons, and at most as many as colons right after a quote or
    whitespace. When either count equals ``keys`` no key repeats; otherwise (colons in
    strings, deeper objects) the standard parser checks every object.
    """
    if raw.count(b":") == keys:
        return
    after = raw.count(b'":') + raw.count(b" :") + raw.count(b"\n:")
    if after + raw.count(b"\t:") + raw.count(b"\r:") == keys:
        return
    try:
        _std_decode_unique(raw.decode())
    except RecordError:
        raise  # duplicate_key, or what a duplicate hid (a number beyond a double)
    except ValueError:  # pragma: no cover - raw was parsed once already
        pass


def decode_json(raw: bytes | str, max_bytes: int = MAX_RECORD_BYTES) -> Any:
    """The JSON value in untrusted ``raw``. Raises only :class:`RecordError`:

    ``oversize``, ``empty``, ``invalid_utf8`` (not UTF-8, or a string with a lone surrogate
    escape other than a top-level ``device_id``, left to :func:`check_device_id`),
    ``invalid_json``, ``too_deep`` (deeper than :data:`MAX_DEPTH`), ``duplicate_key``,
    ``number_out_of_range`` (beyond a double) or ``not_finite`` (NaN, Infinity).
    Integers come back as ``int``, other numbers as finite ``float``.
    """
    if isinstance(raw, str):
        try:
            raw = raw.encode()
        except UnicodeEncodeError as exc:
            raise RecordError("invalid_utf8", f"lone surrogate at index {exc.start}") from None
    if len(raw) > max_bytes:
        raise RecordError("oversize", f"{len(raw)} bytes > {max_bytes}")
    if not raw:
        raise RecordError("empty", "no bytes")
    if _fast_loads is None:
        obj, keys = _std_loads(raw)
    else:
        try:
            obj = _fast_loads(raw)
        except ValueError as exc:
            obj = _refused(raw, str(exc))
        else:
            if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
                _check_depth(obj)
        keys = _shallow_keys(obj)
    _check_unique_keys(raw, keys)
    return obj


def _dumps(obj: dict[str, Any], numbers: Iterable[float | None] = ()) -> bytes:
    """Compact JSON. NaN and infinities are refused (they are not JSON): orjson would
    write them as null, so ``numbers`` — every float of the record — is checked first."""
    if _fast_dumps is None:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    for x in numbers:
        if x is not None and not math.isfinite(x):
            raise ValueError(f"Out of range float values are not JSON compliant: {x}")
    return _fast_dumps(obj)


def _loads(raw: bytes | str) -> dict[str, Any]:
    obj = decode_json(raw)
    if type(obj) is not dict:
        raise RecordError("wrong_type", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError("wrong_type", f"{name} must be a number, got {type(value).__name__}")
    try:
        f = float(value)
    except OverflowError:
        raise RecordError(
            "number_out_of_range", f"{name} is beyond the range of a double"
        ) from None
    if not math.isfinite(f):
        raise RecordError("not_finite", f"{name} is {f}")
    return f


def _metric_values(metrics: dict[Any, Any]) -> dict[str, float]:
    """Checked names and finite values; the common case (a short printable name, a finite
    float) costs no call."""
    clean: dict[str, float] = {}
    for k, v in metrics.items():
        if not (type(k) is str and 0 < len(k) <= MAX_ID_LENGTH and k.isprintable()):
            check_metric_name(k)
        clean[k] = v if type(v) is float and math.isfinite(v) else _finite(f"metrics.{k!a:.70}", v)
    return clean


def _identifier(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise RecordError("wrong_type", f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise RecordError("wrong_type", f"{name} longer than {MAX_ID_LENGTH} characters")
    return value


def _epoch_ms(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float):
            if not math.isfinite(value):
                raise RecordError("not_finite", f"{name} is {value}")
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise RecordError("number_out_of_range", f"{name} {value} is beyond int64")
        raise RecordError("wrong_type", f"{name} must be an integer (epoch ms UTC)")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise RecordError("number_out_of_range", f"{name} is beyond int64")
    return value


def _version(obj: Mapping[str, Any]) -> None:
    v = obj.get("v")
    if type(v) is not int or v != SCHEMA_VERSION:
        raise RecordError("unsupported_version", f"v={v!r:.40}, expected {SCHEMA_VERSION}")


@dataclass(frozen=True, slots=True)
class Reading:
    """One device's measurements at one event time: the canonical record on ``readings``.

    Constructing one checks the device id (:func:`check_device_id`).
    """

    device_id: str
    ts: int  # event time, epoch ms UTC
    metrics: Mapping[str, float]
    tags: Mapping[str, str] = field(default_factory=dict)
    v: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        check_device_id(self.device_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "device_id": self.device_id,
            "ts": self.ts,
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
        }

    def to_json(self) -> bytes:
        return _dumps(self.to_dict(), self.metrics.values())

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Reading:
        _version(obj)
        ts = _epoch_ms("ts", obj.get("ts"))
        metrics = obj.get("metrics")
        if not metrics:
            raise RecordError("no_metric", "metrics must be a non-empty object")
        if not isinstance(metrics, dict):
            raise RecordError("wrong_type", "metrics must be an object")
        clean = _metric_values(metrics)
        tags = obj.get("tags", {})
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise RecordError("wrong_type", "tags must map strings to strings")
        device_id: str = obj.get("device_id")  # type: ignore[assignment]  # the constructor checks it
        return cls(device_id=device_id, ts=ts, metrics=clean, tags=dict(tags))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Reading:
        """Parse a record of ``readings``; raises only :class:`RecordError` (:data:`REASONS`)."""
        return cls.from_dict(_loads(raw))


@dataclass(frozen=True, slots=True)
class Prediction:
    """A forecast made when one device's window closed (topic ``predictions``)."""

    device_id: str
    metric: str
    window_start: int  # epoch ms, inclusive
    window_end: int  # epoch ms, exclusive; also the record's event time
    horizon_ms: int
    target_ts: int  # window_end + horizon_ms: the time the forecast is for
    forecast: float
    last_value: float
    features: Mapping[str, float]
    model_name: str
    model_version: str
    v: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies, which costs more than the rest of
        # the prediction path in the processor.
        return {
            "v": self.v,
            "device_id": self.device_id,
            "metric": self.metric,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "horizon_ms": self.horizon_ms,
            "target_ts": self.target_ts,
            "forecast": self.forecast,
            "last_value": self.last_value,
            "features": dict(self.features),
            "model_name": self.model_name,
            "model_version": self.model_version,
        }

    def to_json(self) -> bytes:
        return _dumps(self.to_dict(), (self.forecast, self.last_value, *self.features.values()))

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Prediction:
        _version(obj)
        features = obj.get("features") or {}
        if not isinstance(features, dict):
            raise RecordError("wrong_type", "features must be an object")
        return cls(
            device_id=check_device_id(obj.get("device_id")),
            metric=_identifier("metric", obj.get("metric")),
            window_start=_epoch_ms("window_start", obj.get("window_start")),
            window_end=_epoch_ms("window_end", obj.get("window_end")),
            horizon_ms=_epoch_ms("horizon_ms", obj.get("horizon_ms")),
            target_ts=_epoch_ms("target_ts", obj.get("target_ts")),
            forecast=_finite("forecast", obj.get("forecast")),
            last_value=_finite("last_value", obj.get("last_value")),
            features={k: _finite(k, v) for k, v in features.items()},
            model_name=_identifier("model_name", obj.get("model_name")),
            model_version=_identifier("model_version", obj.get("model_version")),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Prediction:
        return cls.from_dict(_loads(raw))


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert episode event (topic ``alerts``).

    ``alert_id`` is deterministic per episode (device, type, episode start), so a consumer
    that sees an event twice (possible under at-least-once after a crash) can de-duplicate
    on ``(alert_id, event)``.
    """

    alert_id: str
    device_id: str
    type: str
    event: str  # "open" | "cleared"
    ts: int  # event time at which the event happened, epoch ms
    episode_start: int  # event time at which the condition began
    value: float | None = None
    threshold: float | None = None
    model_version: str | None = None
    message: str = ""
    v: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "alert_id": self.alert_id,
            "device_id": self.device_id,
            "type": self.type,
            "event": self.event,
            "ts": self.ts,
            "episode_start": self.episode_start,
            "value": self.value,
            "threshold": self.threshold,
            "model_version": self.model_version,
            "message": self.message,
        }

    def to_json(self) -> bytes:
        return _dumps(self.to_dict(), (self.value, self.threshold))

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Alert:
        _version(obj)
        kind = obj.get("type")
        if kind not in ALERT_TYPES:
            raise RecordError("wrong_type", f"unknown alert type {kind!r}")
        event = obj.get("event")
        if event not in ("open", "cleared"):
            raise RecordError("wrong_type", f"unknown alert event {event!r}")
        value, threshold = obj.get("value"), obj.get("threshold")
        return cls(
            alert_id=_identifier("alert_id", obj.get("alert_id")),
            device_id=check_device_id(obj.get("device_id")),
            type=kind,
            event=event,
            ts=_epoch_ms("ts", obj.get("ts")),
            episode_start=_epoch_ms("episode_start", obj.get("episode_start")),
            value=None if value is None else _finite("value", value),
            threshold=None if threshold is None else _finite("threshold", threshold),
            model_version=obj.get("model_version"),
            message=str(obj.get("message", "")),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Alert:
        return cls.from_dict(_loads(raw))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input. On Kafka the value is the raw payload, unchanged; the rest are headers.

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
        return h.encode(
            {
                h.ERROR_REASON: self.reason,
                h.ERROR_DETAIL: self.detail[:1000] or None,
                h.RECEIVED_AT: self.received_at,
                h.SOURCE_TOPIC: self.source_topic,
                h.SOURCE_PARTITION: self.source_partition,
                h.SOURCE_OFFSET: self.source_offset,
                h.MQTT_TOPIC: self.mqtt_topic,
                **self.extra,
            }
        )


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema for ``reading``, ``prediction``, ``alert`` or ``dead_letter``."""
    text = resources.files("iotml.core.schemas").joinpath(f"{name}.schema.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return,unused-ignore]
