"""Synthetic readings for training without real data (``--input synthetic://...``).

Uses the bridge's fleet model (``bridge.fleet``) when it offers a public generator, and
otherwise a small built-in one: a daily cycle, a slow random walk and sensor noise per
device, deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np

from iotml.durations import parse_duration_ms
from models.errors import DataError
from models.replay import Point

DEFAULT_START_MS = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000  # a UTC midnight


def parse_spec(spec: str) -> dict[str, str]:
    """``"devices=5,days=14"`` -> ``{"devices": "5", "days": "14"}``."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise DataError(f"synthetic input: expected key=value, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def generate(
    devices: int = 5,
    duration_ms: int = 14 * 86_400_000,
    interval_ms: int = 60_000,
    seed: int = 0,
    start_ms: int = DEFAULT_START_MS,
    base: float = 70.0,
    prefix: str = "machine-",
) -> Iterator[Point]:
    """Readings of ``devices`` devices every ``interval_ms``, in time order."""
    rng = np.random.default_rng(seed)
    n = duration_ms // interval_ms
    levels = base + rng.normal(0.0, 3.0, devices)
    amps = rng.uniform(2.0, 6.0, devices)
    phases = rng.uniform(0.0, 2 * math.pi, devices)
    walk = np.zeros(devices)
    for i in range(n):
        ts = start_ms + i * interval_ms
        day = 2 * math.pi * (ts % 86_400_000) / 86_400_000
        walk = 0.995 * walk + rng.normal(0.0, 0.15, devices)
        noise = rng.normal(0.0, 0.3, devices)
        for d in range(devices):
            value = levels[d] + amps[d] * math.sin(day + phases[d]) + walk[d] + noise[d]
            yield f"{prefix}{d + 1}", ts, round(float(value), 4)


def from_spec(spec: str, metric: str = "temperature") -> list[Point]:
    """Points for ``synthetic://devices=5,days=14[,step=1m,seed=0]`` (``interval`` is an
    alias of ``step``; ``duration=6h`` instead of ``days``). Uses ``bridge.fleet``'s
    physical model when the bridge package is installed, the built-in generator otherwise.
    """
    del metric  # one metric per synthetic device
    opts: Mapping[str, str] = parse_spec(spec)
    known = {"devices", "days", "duration", "interval", "step", "seed", "start"}
    unknown = set(opts) - known
    if unknown:
        raise DataError(f"synthetic input: unknown keys {sorted(unknown)} (known: {sorted(known)})")
    try:
        duration = (
            parse_duration_ms(opts["duration"])
            if "duration" in opts
            else int(float(opts.get("days", "14")) * 86_400_000)
        )
        step = parse_duration_ms(opts.get("step", opts.get("interval", "1m")))
        devices, seed = int(opts.get("devices", "5")), int(opts.get("seed", "0"))
        start = int(opts.get("start", str(DEFAULT_START_MS)))
    except ValueError as exc:
        raise DataError(f"synthetic input {spec!r}: {exc}") from None
    try:
        from bridge.fleet import SyntheticFleet, history
    except ImportError:
        return list(generate(devices, duration, step, seed, start))
    fleet = SyntheticFleet(devices, step_ms=step, start_ms=start, seed=seed)
    return [(s.device_id, s.ts, s.value) for s in history(fleet, duration // step, start)]
