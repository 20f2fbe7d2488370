"""A device's normal level and spread: learned at training, adapted slowly online.

The forecaster follows a device wherever it goes, so a lasting fault (a temperature that
falls by 25 degrees and stays there) stops being an anomaly for it within a few windows.
A baseline does not follow: it is the device's own normal band, learned where the device
has enough history (the fleet's band otherwise) and adapted with a slow exponential
average, never while the device is off it (or the ``deviation`` alert would clear
itself). Pure functions over a small frozen record stored in the device state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Robust spread of a normal distribution from its median absolute deviation.
_MAD_TO_STD = 1.4826


@dataclass(frozen=True, slots=True)
class Baseline:
    """A normal band: ``level`` (typical window mean) and ``spread`` (its standard
    deviation), learned from ``n`` windows."""

    level: float
    spread: float
    n: int

    def to_list(self) -> list[float]:
        return [self.level, self.spread, self.n]

    @classmethod
    def from_list(cls, item: Sequence[Any] | None) -> Baseline | None:
        if not item or len(item) < 3:
            return None
        return cls(float(item[0]), float(item[1]), int(item[2]))

    def deviation(self, value: float) -> float:
        """How many spreads ``value`` lies from the level (signed)."""
        return (value - self.level) / self.spread


def learn(means: Iterable[float], min_spread: float) -> Baseline | None:
    """The band of a device's window means: median and robust spread (MAD), so the
    faults inside the training data move it little. ``None`` for no data."""
    xs = sorted(x for x in means if math.isfinite(x))
    if not xs:
        return None
    level = _median(xs)
    mad = _median(sorted(abs(x - level) for x in xs))
    return Baseline(level, max(mad * _MAD_TO_STD, min_spread), len(xs))


def adapt(b: Baseline, mean: float, rate: float, min_spread: float) -> Baseline:
    """``b`` after one more normal window of mean ``mean`` (exponential average with
    weight ``rate``; the variance follows the same average)."""
    if not math.isfinite(mean):
        return b
    diff = mean - b.level
    level = b.level + rate * diff
    var = (1 - rate) * (b.spread**2 + rate * diff * diff)
    return Baseline(level, max(math.sqrt(var), min_spread), b.n + 1)


@dataclass(frozen=True, slots=True)
class Baselines:
    """What training learned: per-device bands where a device had ``min_windows``
    windows, the fleet's band for the others, and the deviation (in spreads) that counts
    as off-baseline."""

    fleet: Baseline
    devices: Mapping[str, Baseline]
    z: float
    min_spread: float

    def of(self, device_id: str) -> Baseline:
        return self.devices.get(device_id, self.fleet)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet.to_list(),
            "z": self.z,
            "min_spread": self.min_spread,
            "devices": {d: b.to_list() for d, b in sorted(self.devices.items())},
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Baselines:
        fleet = Baseline.from_list(obj["fleet"])
        if fleet is None:
            raise ValueError("baselines: no fleet band")
        devices = {
            str(d): b
            for d, item in (obj.get("devices") or {}).items()
            if (b := Baseline.from_list(item)) is not None
        }
        return cls(fleet, devices, float(obj["z"]), float(obj["min_spread"]))


def learn_baselines(
    means: Mapping[str, Sequence[float]], min_windows: int = 20, z_floor: float = 4.0
) -> Baselines | None:
    """Bands from each device's training window means (``None`` without any). ``z`` is
    the 99.5th percentile of the deviations devices showed from their own bands in
    training, times 1.5, and never under ``z_floor``: training data is taken as (mostly)
    normal, so the alert is for what training rarely showed."""
    everything = [x for xs in means.values() for x in xs]
    fleet = learn(everything, 1e-6)
    if fleet is None:
        return None
    # a floor on the spread: a device that never moved in training must not alert on noise
    min_spread = max(fleet.spread * 0.05, 1e-6)
    fleet = Baseline(fleet.level, max(fleet.spread, min_spread), fleet.n)
    devices: dict[str, Baseline] = {}
    seen: list[float] = []
    for dev, xs in means.items():
        if len(xs) < min_windows:
            continue
        b = learn(xs, min_spread)
        if b is None:
            continue
        devices[dev] = b
        seen.extend(abs(b.deviation(x)) for x in xs if math.isfinite(x))
    z = z_floor
    if seen:
        seen.sort()
        z = max(z_floor, 1.5 * seen[min(len(seen) - 1, int(0.995 * len(seen)))])
    return Baselines(fleet, devices, z, min_spread)


def _median(xs: Sequence[float]) -> float:
    n = len(xs)
    mid = n // 2
    return xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2
