"""The ``evaluations`` record: one forecast scored against what happened.

Written by the processor when the window a forecast targeted closes, and read by
dashboards, drift detection and batch jobs, so that all of them use the same numbers as
``iotml evaluate``: the actual is the target window's last value, the persistence
forecast is the last value the forecast was made from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iotml.core.errors import RecordError
from iotml.core.identifiers import check_device_id
from iotml.core.records import (
    SCHEMA_VERSION,
    _dumps,
    _epoch_ms,
    _finite,
    _identifier,
    _loads,
    _version,
)
from iotml.core.tags import checked_tags as _tags

#: Who made the forecast: the live version (its predictions are published) or a shadow
#: candidate run beside it on the same windows (scored only, ``IOTML_SHADOW_VERSION``).
LIVE, SHADOW = "live", "shadow"
ROLES = (LIVE, SHADOW)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A forecast for ``target_ts`` scored once its target window closed."""

    device_id: str
    metric: str
    target_ts: int  # the end of the target window: the record's event time
    horizon_ms: int
    forecast: float
    actual: float  # the target window's last value
    persistence: float  # the last value the forecast was made from
    model_name: str
    model_version: str
    tags: Mapping[str, str] = field(default_factory=dict)  # the device's (iotml.core.tags)
    role: str = LIVE  # LIVE | SHADOW
    v: int = SCHEMA_VERSION

    @property
    def abs_error(self) -> float:
        return abs(self.actual - self.forecast)

    @property
    def persistence_abs_error(self) -> float:
        return abs(self.actual - self.persistence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "device_id": self.device_id,
            "metric": self.metric,
            "target_ts": self.target_ts,
            "horizon_ms": self.horizon_ms,
            "forecast": self.forecast,
            "actual": self.actual,
            "persistence": self.persistence,
            "abs_error": self.abs_error,
            "persistence_abs_error": self.persistence_abs_error,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "tags": dict(self.tags),
            "role": self.role,
        }

    def to_json(self) -> bytes:
        return _dumps(self.to_dict(), (self.forecast, self.actual, self.persistence))

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Evaluation:
        _version(obj)
        return cls(
            device_id=check_device_id(obj.get("device_id")),
            metric=_identifier("metric", obj.get("metric")),
            target_ts=_epoch_ms("target_ts", obj.get("target_ts")),
            horizon_ms=_epoch_ms("horizon_ms", obj.get("horizon_ms")),
            forecast=_finite("forecast", obj.get("forecast")),
            actual=_finite("actual", obj.get("actual")),
            persistence=_finite("persistence", obj.get("persistence")),
            model_name=_identifier("model_name", obj.get("model_name")),
            model_version=_identifier("model_version", obj.get("model_version")),
            tags=_tags(obj),
            role=_role(obj.get("role", LIVE)),  # absent in records from before shadows
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Evaluation:
        return cls.from_dict(_loads(raw))


def _role(value: object) -> str:
    if value not in ROLES:
        raise RecordError("wrong_type", f"unknown evaluation role {value!r}")
    return str(value)
