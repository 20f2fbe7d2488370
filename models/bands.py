"""Per-device baselines (a device's normal band): learned at training, adapted slowly online.

The forecaster follows a device wherever it goes, so a lasting fault (a temperature that
falls by 25 degrees and stays there) stops being an anomaly for it within a few windows.
A baseline does not follow: it is the device's own normal band, learned where the device
has enough history (the fleet's band otherwise) and adapted with a slow exponential
average, never while the device is off it (or the ``deviation`` alert would clear
itself). Pure functions over a small frozen record stored in the device state.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The file of an artifact holding its per-device bands (:class:`Baselines`).
BANDS_FILE = "bands.json"

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

    def of(self, device_id: str) -> Baseline:
        return self.devices.get(device_id, self.fleet)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet.to_list(),
            "z": self.z,
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
        return cls(fleet, devices, float(obj["z"]))


def spread_floor(level: float, min_spread: float = 0.0) -> float:
    """The least spread a band may have: a device that never moved while its band was
    learned must not alert on its next bit of noise."""
    return max(min_spread, 1e-3 * abs(level), 1e-9)


def learning(band: Baseline | None, x: float, min_spread: float = 0.0) -> Baseline:
    """``band`` after the window mean ``x`` while it is still being learned: an ordinary
    mean and variance of the means so far (the first one starts it)."""
    floor = spread_floor(x, min_spread)
    if band is None:
        return Baseline(x, floor, 1)
    return adapt(band, x, 1.0 / (band.n + 1), floor)


def follow(
    means: Sequence[float], rate: float, warmup: int, min_spread: float = 0.0
) -> tuple[Baseline | None, list[float]]:
    """The band a device's window means build when learned online, as the processor
    learns it (an ordinary mean and variance for ``warmup`` windows, then the slow
    average), and how far each later window was from the band before it."""
    band: Baseline | None = None
    distances: list[float] = []
    for x in means:
        if not math.isfinite(x):
            continue
        if band is None or band.n < warmup:
            band = learning(band, x, min_spread)
        else:
            distances.append(abs(band.deviation(x)))
            band = adapt(band, x, rate, spread_floor(x, min_spread))
    return band, distances


def learn_baselines(
    means: Mapping[str, Sequence[float]],
    rate: float = 0.002,
    warmup: int = 20,
    min_windows: int = 40,
    z_floor: float = 4.0,
) -> Baselines | None:
    """Bands from each device's training window means, in time order (``None`` without
    any): each device's band as the processor would have learned it by the end of
    training (:func:`follow`), for devices with ``min_windows`` windows; the fleet's
    robust band for the others. ``z`` is the 99.5th percentile of how far the devices'
    windows were from their bands in training, times 1.5, never under ``z_floor``:
    training data is taken as (mostly) normal, so the alert is for what it rarely showed."""
    everything = [x for xs in means.values() for x in xs]
    fleet = learn(everything, 1e-9)
    if fleet is None:
        return None
    fleet = Baseline(fleet.level, max(fleet.spread, spread_floor(fleet.level)), fleet.n)
    devices: dict[str, Baseline] = {}
    seen: list[float] = []
    for dev, xs in means.items():
        if len(xs) < min_windows:
            continue
        band, distances = follow(xs, rate, warmup)
        if band is None:
            continue
        devices[dev] = band
        seen.extend(distances)
    z = z_floor
    if seen:
        seen.sort()
        z = max(z_floor, 1.5 * seen[min(len(seen) - 1, int(0.995 * len(seen)))])
    return Baselines(fleet, devices, z)


def _median(xs: Sequence[float]) -> float:
    n = len(xs)
    mid = n // 2
    return xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2


def load_bands(directory: Path) -> Baselines | None:
    """The bands an artifact was trained with (``None`` for an artifact without them)."""
    path = directory / BANDS_FILE
    if not path.exists():
        return None
    try:
        return Baselines.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(str(exc)) from None
