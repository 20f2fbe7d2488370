"""Synthetic readings for training without real data (``--input synthetic://...``).

The values come from the simulator's physical model (:mod:`iotml.core.fleet`), so a model
trained on synthetic history has seen what ``iotml simulate`` publishes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from iotml.core.durations import parse_duration_ms
from iotml.core.fleet import SyntheticFleet, history
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


def from_spec(spec: str, metric: str = "temperature") -> list[Point]:
    """Points for ``synthetic://devices=5,days=14[,step=1m,seed=0]`` (``interval`` is an
    alias of ``step``; ``duration=6h`` instead of ``days``)."""
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
    return list(generate(devices, duration, step, seed, start))


def generate(
    devices: int = 5,
    duration_ms: int = 14 * 86_400_000,
    interval_ms: int = 60_000,
    seed: int = 0,
    start_ms: int = DEFAULT_START_MS,
) -> Iterator[Point]:
    """Readings of ``devices`` simulated machines every ``interval_ms``, in time order."""
    fleet = SyntheticFleet(devices, step_ms=interval_ms, start_ms=start_ms, seed=seed)
    for s in history(fleet, duration_ms // interval_ms, start_ms):
        yield s.device_id, s.ts, s.value
