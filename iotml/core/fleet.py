"""A fleet of simulated machines: a small physical model, CSV replay and injected faults.

Pure Python, no MQTT: the simulator publishes these values, and the trainer and the demo
call :func:`history` to make synthetic history without a broker.

Physical model (per device, each with its own parameters drawn from the seed): ambient
temperature follows a daily sine; the machine's load jumps between levels at random times
(a Poisson process); the temperature relaxes towards ``ambient + gain * load`` with a
first-order lag (time constant ``tau``) and the sensor adds Gaussian noise.

Faults (``device:kind[@start[-end]]``) are described in :mod:`iotml.core.faults`.

Devices advance tick by tick: call :meth:`Fleet.value` with consecutive ticks per device.
"""

from __future__ import annotations

import csv
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from iotml.core.faults import (
    DROP_C,
    FAULT_KINDS,
    OVERHEAT_C_PER_H,
    OVERHEAT_MAX_C,
    REGIME_LOAD_FACTOR,
    REGIME_NOISE_FACTOR,
    REGIME_TAU_FACTOR,
    Fault,
    FaultState,
    parse_fault,
)

__all__ = [
    "DROP_C",
    "FAULT_KINDS",
    "OVERHEAT_C_PER_H",
    "OVERHEAT_MAX_C",
    "DeviceParams",
    "Fault",
    "Fleet",
    "ReplayFleet",
    "Sample",
    "SyntheticFleet",
    "history",
    "load_series",
    "parse_fault",
]

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class DeviceParams:
    device_id: str
    site: str
    ambient_c: float  # mean ambient temperature
    daily_amplitude_c: float
    phase_h: float  # hour of the daily maximum
    load_gain_c: float  # temperature rise at full load
    tau_s: float  # thermal time constant
    noise_c: float  # sensor noise (standard deviation)
    load_changes_per_h: float


@dataclass(frozen=True, slots=True)
class Sample:
    """One device's value at one tick (``ts`` is simulated time, epoch ms)."""

    device_id: str
    site: str
    ts: int
    value: float
    fault: str | None  # the active fault, ground truth for evaluations


class Fleet:
    """Base of the fleets: device ids, sites, faults. Subclasses provide ``_raw``."""

    step_ms: int  # simulated time between two ticks

    def __init__(
        self,
        devices: int,
        *,
        sites: int = 2,
        prefix: str = "dev",
        faults: Sequence[Fault] = (),
        seed: int = 0,
    ) -> None:
        self.device_ids = [f"{prefix}-{i:04d}" for i in range(devices)]
        self.sites = [f"site-{i % sites}" for i in range(devices)]
        self.seed = seed
        self._faults = [FaultState([f for f in faults if f.applies_to(d)]) for d in self.device_ids]

    def __len__(self) -> int:
        return len(self.device_ids)

    def _raw(self, index: int, tick: int) -> float:
        raise NotImplementedError

    def value(self, index: int, tick: int) -> tuple[float | None, str | None]:
        """``(value, fault)`` of device ``index`` at ``tick``; value ``None``: no message."""
        raw = self._raw(index, tick)
        return self._faults[index].apply(tick * self.step_ms, raw)

    def malformed(self, index: int, tick: int) -> bool:
        """Whether device ``index`` is in a ``malformed`` fault at ``tick``."""
        return self._faults[index].malformed(tick * self.step_ms)


class SyntheticFleet(Fleet):
    """Machines from the physical model; ``start_ms`` anchors the daily cycle."""

    def __init__(
        self,
        devices: int,
        *,
        step_ms: int = 1000,
        start_ms: int = 0,
        sites: int = 2,
        prefix: str = "dev",
        faults: Sequence[Fault] = (),
        seed: int = 0,
    ) -> None:
        super().__init__(devices, sites=sites, prefix=prefix, faults=faults, seed=seed)
        self.step_ms = step_ms
        self.start_ms = start_ms
        self.params: list[DeviceParams] = []
        self._rngs: list[random.Random] = []
        self._temp: list[float] = []
        self._load: list[float] = []
        for i, device_id in enumerate(self.device_ids):
            rng = random.Random(seed * 1_000_003 + i)
            p = DeviceParams(
                device_id=device_id,
                site=self.sites[i],
                ambient_c=rng.uniform(18, 26),
                daily_amplitude_c=rng.uniform(2, 6),
                phase_h=rng.uniform(12, 18),
                load_gain_c=rng.uniform(25, 45),
                tau_s=rng.uniform(600, 2400),
                noise_c=rng.uniform(0.1, 0.5),
                load_changes_per_h=rng.uniform(0.5, 3),
            )
            load = rng.uniform(0.2, 0.9)
            self.params.append(p)
            self._rngs.append(rng)
            self._load.append(load)
            self._temp.append(self._ambient(p, start_ms) + p.load_gain_c * load)

    @staticmethod
    def _ambient(p: DeviceParams, t_ms: int) -> float:
        hours = (t_ms % DAY_MS) / 3_600_000
        return p.ambient_c + p.daily_amplitude_c * math.cos(2 * math.pi * (hours - p.phase_h) / 24)

    def _raw(self, index: int, tick: int) -> float:
        p, rng = self.params[index], self._rngs[index]
        fault = self._faults[index].active(tick * self.step_ms)
        if fault is not None and fault.kind == "regime":
            p = replace(
                p,
                load_changes_per_h=p.load_changes_per_h * REGIME_LOAD_FACTOR,
                tau_s=p.tau_s * REGIME_TAU_FACTOR,
                noise_c=p.noise_c * REGIME_NOISE_FACTOR,
            )
        dt_s = self.step_ms / 1000
        if rng.random() < 1 - math.exp(-p.load_changes_per_h * dt_s / 3600):
            self._load[index] = rng.choice((0.1, 0.3, 0.5, 0.7, 0.9, 1.0))
        target = (
            self._ambient(p, self.start_ms + tick * self.step_ms)
            + p.load_gain_c * self._load[index]
        )
        self._temp[index] += (target - self._temp[index]) * (1 - math.exp(-dt_s / p.tau_s))
        return round(self._temp[index] + rng.gauss(0, p.noise_c), 3)


def load_series(path: Path) -> tuple[list[float], int]:
    """Values and median row interval (ms) of a ``timestamp,value`` CSV with a header row."""
    values: list[float] = []
    stamps: list[float] = []
    with path.open(newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        for row in reader:
            if len(row) < 2:
                continue
            values.append(float(row[1]))
            try:
                stamp = datetime.fromisoformat(row[0].strip())
                stamps.append(stamp.replace(tzinfo=stamp.tzinfo or UTC).timestamp())
            except ValueError:
                pass
    if len(values) < 2:
        raise ValueError(f"{path}: needs at least two rows of timestamp,value")
    diffs = sorted(b - a for a, b in itertools.pairwise(stamps) if b > a)
    interval_ms = int(diffs[len(diffs) // 2] * 1000) if diffs else 60_000
    return values, interval_ms


class ReplayFleet(Fleet):
    """Every device replays the same series, each from its own phase and value offset."""

    def __init__(
        self,
        values: Sequence[float],
        devices: int,
        *,
        step_ms: int,
        sites: int = 2,
        prefix: str = "dev",
        faults: Sequence[Fault] = (),
        seed: int = 0,
    ) -> None:
        super().__init__(devices, sites=sites, prefix=prefix, faults=faults, seed=seed)
        self.values = list(values)
        self.step_ms = step_ms
        rng = random.Random(seed)
        n = len(self.values)
        self.phase = [0 if i == 0 else rng.randrange(n) for i in range(devices)]
        self.offset = [0.0 if i == 0 else round(rng.uniform(-5, 5), 2) for i in range(devices)]

    @classmethod
    def from_csv(cls, path: Path, devices: int, **kwargs: object) -> ReplayFleet:
        values, step_ms = load_series(path)
        return cls(values, devices, step_ms=step_ms, **kwargs)  # type: ignore[arg-type]

    def _raw(self, index: int, tick: int) -> float:
        return self.values[(tick + self.phase[index]) % len(self.values)] + self.offset[index]


def history(fleet: Fleet, ticks: int, start_ms: int) -> Iterator[Sample]:
    """``ticks`` ticks of every device, stamped ``start_ms + tick * fleet.step_ms``;
    devices in dropout yield nothing. Synthetic history for training and demos."""
    for tick in range(ticks):
        ts = start_ms + tick * fleet.step_ms
        for i, device_id in enumerate(fleet.device_ids):
            value, fault = fleet.value(i, tick)
            if value is not None:
                yield Sample(device_id, fleet.sites[i], ts, value, fault)
