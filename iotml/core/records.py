"""The records that move between services, defined once.

Every record is a frozen dataclass with ``to_dict``/``to_json`` and a validating
``from_dict``/``from_json`` that raises :class:`~iotml.core.errors.RecordError` with a short
reason code. The JSON Schemas in ``iotml/core/schemas/`` describe the same shapes for
consumers in other languages; a test keeps both in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from iotml.core.errors import RecordError
from iotml.core.fields import (
    SCHEMA_VERSION,
    _dumps,
    _epoch_ms,
    _finite,
    _identifier,
    _loads,
    _metric_values,
    _version,
)
from iotml.core.identifiers import check_device_id
from iotml.core.tags import checked_tags as _tags

__all__ = ["ALERT_TYPES", "REASONS", "SCHEMA_VERSION", "Alert", "Prediction", "Reading"]

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

AlertType = Literal["overheat_predicted", "anomaly", "out_of_range", "device_silent", "deviation"]
AlertEvent = Literal["open", "cleared"]
ALERT_TYPES: tuple[str, ...] = (
    "overheat_predicted",
    "anomaly",
    "out_of_range",
    "device_silent",
    "deviation",
)


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
    tags: Mapping[str, str] = field(default_factory=dict)  # the device's (iotml.core.tags)
    # how unusual the device's latest forecast error was for it (models.likelihood)
    anomaly_likelihood: float | None = None
    # what made the forecast: "persistence" (the statistical baseline of a cold start) or
    # "network" (a trained model); None in records written before kinds were carried
    model_kind: str | None = None
    v: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies, which costs more than the rest of
        # the prediction path in the processor.
        out = {
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
            "tags": dict(self.tags),
        }
        if self.anomaly_likelihood is not None:
            out["anomaly_likelihood"] = self.anomaly_likelihood
        if self.model_kind is not None:
            out["model_kind"] = self.model_kind
        return out

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
            tags=_tags(obj),
            anomaly_likelihood=(
                None
                if obj.get("anomaly_likelihood") is None
                else _finite("anomaly_likelihood", obj.get("anomaly_likelihood"))
            ),
            model_kind=(
                None
                if obj.get("model_kind") is None
                else _identifier("model_kind", obj.get("model_kind"))
            ),
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
    tags: Mapping[str, str] = field(default_factory=dict)  # the device's (iotml.core.tags)
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
            "tags": dict(self.tags),
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
            tags=_tags(obj),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Alert:
        return cls.from_dict(_loads(raw))
