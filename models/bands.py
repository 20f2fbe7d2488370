"""Per-device baselines (a device's band): where its next window mean should be, and how
far a normal window lands from that.

The forecaster follows a device wherever it goes, so a lasting fault (a temperature that
falls by 25 degrees and stays there) stops being an anomaly for it within a few windows.
A band does not follow a fault: its level follows the device at a rate fitted to how the
device's window means move in training (fast for a machine whose load and daily cycle
move it smoothly, slow for a noisy one), and its spread is the usual miss of that level,
so the slow, normal swings are inside the band and a jump is far outside it. While the
device is off its band the jump is held as ``shift`` and the level goes on following the
device with the jump taken out (:func:`shifted`): the ``deviation`` alert stays open as
long as the fault lasts and clears when the device is back where it would have been.
Pure functions over a small frozen record stored in the device state.
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

#: The rates a band's level may follow its device at (:func:`fit_rate` picks one): from
#: a slow average over thousands of windows to the last normal window itself.
RATES = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)

#: Weight of one window's squared miss in the spread: slow, so a spread is the device's
#: usual variation, not its last few windows'.
SPREAD_RATE = 0.002


@dataclass(frozen=True, slots=True)
class Baseline:
    """A device's band: ``level`` (the window mean expected next), ``spread`` (how far a
    normal window lands from that expectation, the root mean square of those misses),
    learned from ``n`` windows; ``shift`` is how far off the device jumped when a
    deviation began (0 while it is on its band)."""

    level: float
    spread: float
    n: int
    shift: float = 0.0

    def to_list(self) -> list[float]:
        out = [self.level, self.spread, self.n]
        return [*out, self.shift] if self.shift else out

    @classmethod
    def from_list(cls, item: Sequence[Any] | None) -> Baseline | None:
        if not item or len(item) < 3:
            return None
        shift = float(item[3]) if len(item) > 3 else 0.0
        return cls(float(item[0]), float(item[1]), int(item[2]), shift)

    def deviation(self, value: float) -> float:
        """How many spreads ``value`` lies from the level (signed)."""
        return (value - self.level) / self.spread


def learn(means: Iterable[float], min_spread: float) -> Baseline | None:
    """The band of a set of window means: median and robust spread (MAD), so the faults
    inside the data move it little. ``None`` for no data."""
    xs = sorted(x for x in means if math.isfinite(x))
    if not xs:
        return None
    level = _median(xs)
    mad = _median(sorted(abs(x - level) for x in xs))
    return Baseline(level, max(mad * _MAD_TO_STD, min_spread), len(xs))


def adapt(
    b: Baseline, mean: float, rate: float, min_spread: float, spread_rate: float | None = None
) -> Baseline:
    """``b`` after one more normal window of mean ``mean``: the level moves towards it by
    ``rate`` (an exponential average), the squared miss ``(mean - level)**2`` enters the
    spread's average with weight ``spread_rate`` (``rate`` when not given)."""
    if not math.isfinite(mean):
        return b
    diff = mean - b.level
    w = rate if spread_rate is None else spread_rate
    var = b.spread**2 + w * (diff * diff - b.spread**2)
    return Baseline(b.level + rate * diff, max(math.sqrt(var), min_spread), b.n + 1)


def shifted(b: Baseline, mean: float, rate: float) -> Baseline:
    """``b`` after a window of mean ``mean`` while the device is off its band: the jump
    it made (``shift``, kept from the first such window) is taken out and the level
    follows the rest, so it goes on saying where the device would be without the fault
    (a fault that ends is seen as the device coming back to it). The spread stays."""
    shift = b.shift or mean - b.level
    level = b.level + rate * (mean - shift - b.level)
    return Baseline(level, b.spread, b.n, shift)


@dataclass(frozen=True, slots=True)
class Baselines:
    """What training learned: per-device bands where a device had ``min_windows``
    windows, the fleet's band for the others, the deviation (in spreads) that counts as
    off-band and the ``rate`` at which a band's level follows its device."""

    fleet: Baseline
    devices: Mapping[str, Baseline]
    z: float
    rate: float = 0.002

    def of(self, device_id: str) -> Baseline:
        return self.devices.get(device_id, self.fleet)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet.to_list(),
            "z": self.z,
            "rate": self.rate,
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
        return cls(fleet, devices, float(obj["z"]), float(obj.get("rate", 0.002)))


def spread_floor(level: float, min_spread: float = 0.0) -> float:
    """The least spread a band may have: a device that never moved while its band was
    learned must not alert on its next bit of noise."""
    return max(min_spread, 1e-3 * abs(level), 1e-9)


def learning(
    band: Baseline | None, x: float, min_spread: float = 0.0, rate: float = 0.0
) -> Baseline:
    """``band`` after the window mean ``x`` while it is still being learned: the level an
    ordinary mean (or the exponential one, when ``rate`` is faster), the spread the
    ordinary mean of the squared misses so far (the first window starts it)."""
    floor = spread_floor(x, min_spread)
    if band is None:
        return Baseline(x, floor, 1)
    diff = x - band.level
    var = band.spread**2 + (diff * diff - band.spread**2) / band.n if band.n > 1 else diff * diff
    level = band.level + max(rate, 1.0 / (band.n + 1)) * diff
    return Baseline(level, max(math.sqrt(var), floor), band.n + 1)


def follow(
    means: Sequence[float],
    rate: float,
    warmup: int,
    min_spread: float = 0.0,
    spread_rate: float = SPREAD_RATE,
) -> tuple[Baseline | None, list[float]]:
    """The band a device's window means build when learned online, as the processor
    learns it (:func:`learning` for ``warmup`` windows, then :func:`adapt`), and how far
    (in spreads) each later window was from the band before it."""
    band: Baseline | None = None
    distances: list[float] = []
    for x in means:
        if not math.isfinite(x):
            continue
        if band is None or band.n < warmup:
            band = learning(band, x, min_spread, rate)
        else:
            distances.append(abs(band.deviation(x)))
            band = adapt(band, x, rate, spread_floor(x, min_spread), spread_rate)
    return band, distances


def fit_rate(means: Iterable[Sequence[float]], rates: Sequence[float] = RATES) -> float:
    """The level's rate that best predicts each next window mean of the devices (simple
    exponential smoothing fitted by least squares, each device's squared misses relative
    to its own variance): near 1 for devices whose level wanders smoothly (a machine's
    load and the daily cycle, which the band should follow), small for devices whose
    window means are noise around a level."""
    series = [[x for x in xs if math.isfinite(x)] for xs in means]
    series = [xs for xs in series if len(xs) > 2]
    if not series:
        return rates[0]

    def cost(rate: float) -> float:
        total = 0.0
        for xs in series:
            mu = sum(xs) / len(xs)
            var = sum((x - mu) ** 2 for x in xs) / len(xs) or 1.0
            level, sq = xs[0], 0.0
            for n, x in enumerate(xs[1:], 2):  # as the band learns: a plain mean at first
                sq += (x - level) ** 2
                level += max(rate, 1.0 / n) * (x - level)
            total += sq / (len(xs) - 1) / var
        return total

    return min(rates, key=cost)


def learn_baselines(
    means: Mapping[str, Sequence[float]],
    warmup: int = 20,
    min_windows: int = 40,
    z_floor: float = 4.0,
    rates: Sequence[float] = RATES,
) -> Baselines | None:
    """Bands from each device's training window means, in time order (``None`` without
    any). The rate is :func:`fit_rate`'s; each device's band is the one the processor
    would have learned by the end of training (:func:`follow`), for devices with
    ``min_windows`` windows; the others get the fleet's: its median level and the median
    of the devices' spreads. ``z`` is 3 times the 99.9th percentile of how far the
    devices' windows were from their bands in training, never under ``z_floor``: training
    data is taken as normal but for a few windows in a thousand, and the misses of a
    machine are heavy-tailed (a load change is a rare, large step: twice that percentile
    is seen), so the alert is for a jump well beyond what a device does of itself."""
    everything = [x for xs in means.values() for x in xs]
    fleet = learn(everything, 1e-9)
    if fleet is None:
        return None
    long = {d: xs for d, xs in means.items() if len(xs) >= min_windows}
    rate = fit_rate(long.values() or means.values(), rates)
    devices: dict[str, Baseline] = {}
    seen: list[float] = []
    for dev, xs in long.items():
        band, distances = follow(xs, rate, warmup)
        if band is not None:
            devices[dev] = band
            seen.extend(distances)
    if not devices:  # no device with its own band: each one's misses, however few
        devices_short = (follow(xs, rate, len(xs))[0] for xs in means.values())
        spreads = sorted(b.spread for b in devices_short if b is not None)
    else:
        spreads = sorted(b.spread for b in devices.values())
    spread = max(_median(spreads), spread_floor(fleet.level))
    z = z_floor
    if seen:
        seen.sort()
        z = max(z_floor, 3.0 * seen[min(len(seen) - 1, int(0.999 * len(seen)))])
    return Baselines(Baseline(fleet.level, spread, fleet.n), devices, z, rate)


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
