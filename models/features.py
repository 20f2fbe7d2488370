"""Windowed features, defined once for the stream processor, training, evaluation and batch.

Rules (the same in stream and batch because both call this module):

* **Windows** are tumbling and epoch-aligned: ``[start, start + window_ms)``, with
  ``start = ts - ts % window_ms`` (quixstreams' tumbling windows use the same alignment).
* **Duplicates and out-of-order readings** inside a window: points are sorted by timestamp
  (stable), and for a repeated timestamp the value received *last* wins. Readings for a
  window that has already closed are late; :mod:`models.pipeline` drops (and counts) them.
* **Too few readings**: a window with fewer than ``min_count`` readings is kept in the
  history as *invalid*. A feature row is produced only when the closed window and the
  ``k`` windows before it are all present (no gap) and valid, so no NaN ever reaches the
  model; after a gap, forecasts resume once ``k + 1`` contiguous valid windows exist.
* **Time of day** is the window start's position in the UTC day, as sin/cos.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.errors import IncompatibleArtifact

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

#: Statistics of the closed window, in vector order. Besides ``last`` (the level), values
#: are relative to the window's last value, so the network learns shapes, not levels.
CURRENT = (
    "last",
    "mean_delta",
    "min_delta",
    "max_delta",
    "first_delta",
    "std",
    "slope",
    "count",
    "tod_sin",
    "tod_cos",
)
#: Per previous window i = 1..k: its mean and last value relative to the current last value.
LAGGED = ("mean_delta", "last_delta")
FEATURE_FORMAT = 1


def window_bounds(ts_ms: int, window_ms: int) -> tuple[int, int]:
    """``(start, end)`` of the tumbling window holding ``ts_ms`` (end exclusive)."""
    start = ts_ms - ts_ms % window_ms
    return start, start + window_ms


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """What a model was trained on; stored in the artifact's manifest."""

    metric: str
    window_ms: int
    k: int
    horizon_ms: int
    min_count: int = 3
    format: int = FEATURE_FORMAT

    def __post_init__(self) -> None:
        if self.window_ms <= 0 or self.horizon_ms <= 0:
            raise ValueError("window and horizon must be positive")
        if self.horizon_ms % self.window_ms:
            raise ValueError(
                f"horizon ({self.horizon_ms} ms) must be a multiple of the window "
                f"({self.window_ms} ms): the forecast targets the last value of a later window"
            )
        if self.k < 0 or self.min_count < 1:
            raise ValueError("k must be >= 0 and min_count >= 1")

    def names(self) -> list[str]:
        """Feature names, in the order of :attr:`FeatureRow.vector`."""
        lagged = [f"{name}_{i}" for i in range(1, self.k + 1) for name in LAGGED]
        return [*CURRENT, *lagged]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "window_ms": self.window_ms,
            "k": self.k,
            "horizon_ms": self.horizon_ms,
            "min_count": self.min_count,
            "format": self.format,
            "names": self.names(),
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> FeatureSpec:
        try:
            spec = cls(
                metric=str(obj["metric"]),
                window_ms=int(obj["window_ms"]),
                k=int(obj["k"]),
                horizon_ms=int(obj["horizon_ms"]),
                min_count=int(obj.get("min_count", 1)),
                format=int(obj.get("format", FEATURE_FORMAT)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IncompatibleArtifact(f"invalid feature spec {dict(obj)!r}: {exc}") from None
        if spec.format != FEATURE_FORMAT:
            raise IncompatibleArtifact(
                f"feature format {spec.format} is not supported (this code: {FEATURE_FORMAT})"
            )
        if "names" in obj and list(obj["names"]) != spec.names():
            raise IncompatibleArtifact("feature names in the manifest differ from this code's")
        return spec


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Summary of one device's readings in one closed window."""

    start: int
    end: int
    count: int
    mean: float
    min: float
    max: float
    std: float
    first: float
    last: float
    slope: float  # least-squares slope, metric units per hour

    @classmethod
    def from_points(cls, points: Sequence[tuple[int, float]], start: int, end: int) -> WindowStats:
        """Stats of ``(ts_ms, value)`` points in arrival order (see the module rules:
        sorted by timestamp, the last value received wins for a repeated timestamp)."""
        if not points:
            raise ValueError("a window needs at least one reading")
        latest: dict[int, float] = {}
        for ts, value in points:
            latest[int(ts)] = float(value)  # later arrivals overwrite earlier ones
        ts_sorted = sorted(latest)
        values = [latest[t] for t in ts_sorted]
        n = len(values)
        mean = math.fsum(values) / n
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / n)
        slope = 0.0
        if n > 1:
            hours = [(t - ts_sorted[0]) / HOUR_MS for t in ts_sorted]
            mh = math.fsum(hours) / n
            sxx = math.fsum((h - mh) ** 2 for h in hours)
            sxy = math.fsum((h - mh) * (v - mean) for h, v in zip(hours, values, strict=True))
            slope = sxy / sxx if sxx > 0 else 0.0
        return cls(
            start=start,
            end=end,
            count=n,
            mean=mean,
            min=min(values),
            max=max(values),
            std=std,
            first=values[0],
            last=values[-1],
            slope=slope,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "count": self.count,
            "mean": self.mean,
            "min": self.min,
            "max": self.max,
            "std": self.std,
            "first": self.first,
            "last": self.last,
            "slope": self.slope,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> WindowStats:
        return cls(
            start=int(obj["start"]),
            end=int(obj["end"]),
            count=int(obj["count"]),
            **{n: float(obj[n]) for n in ("mean", "min", "max", "std", "first", "last", "slope")},
        )


@dataclass(frozen=True, slots=True)
class FeatureRow:
    """The model input for one closed window of one device."""

    window_start: int
    window_end: int
    last_value: float
    features: dict[str, float]
    vector: np.ndarray = field(repr=False)  # float32, order of FeatureSpec.names()


def usable(stats: WindowStats, spec: FeatureSpec) -> bool:
    """Whether a window has enough readings to be used as a feature input."""
    return stats.count >= spec.min_count


def feature_row(history: Sequence[WindowStats], spec: FeatureSpec) -> FeatureRow | None:
    """The feature row of ``history[-1]`` given the windows before it (oldest first), or
    ``None`` when the last ``k + 1`` windows are not contiguous and usable."""
    if len(history) < spec.k + 1:
        return None
    recent = history[-(spec.k + 1) :]
    cur = recent[-1]
    for i, w in enumerate(recent):
        expected_start = cur.start - (spec.k - i) * spec.window_ms
        if w.start != expected_start or not usable(w, spec):
            return None
    phase = 2.0 * math.pi * (cur.start % DAY_MS) / DAY_MS
    values: list[float] = [
        cur.last,
        cur.mean - cur.last,
        cur.min - cur.last,
        cur.max - cur.last,
        cur.first - cur.last,
        cur.std,
        cur.slope,
        float(cur.count),
        math.sin(phase),
        math.cos(phase),
    ]
    for i in range(1, spec.k + 1):
        prev = recent[-1 - i]
        values.extend((prev.mean - cur.last, prev.last - cur.last))
    names = spec.names()
    return FeatureRow(
        window_start=cur.start,
        window_end=cur.end,
        last_value=cur.last,
        features=dict(zip(names, values, strict=True)),
        vector=np.asarray(values, dtype=np.float32),
    )
