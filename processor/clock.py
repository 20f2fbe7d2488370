"""The partition clock: closing the windows of quiet devices.

A device's windows close on its own readings (its watermark, as in ``iotml batch``). Each
time the partition's event time (largest reading or heartbeat time) crosses a window
boundary, devices whose last reading is more than ``idle_ms`` behind it are advanced to
the partition time (their windows close), and devices quiet for the model's
``silence_ms`` are due for ``device_silent``. When a whole partition is idle, the
heartbeat records of :mod:`processor.heartbeat` move its event time on; every heartbeat
sweeps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from models import DeviceState, FeatureSpec, WindowStats, advance

#: Values of the heartbeat header: move the partition clock, or only learn it.
HEARTBEAT_ADVANCE, HEARTBEAT_PROBE = "advance", "probe"


@dataclass(slots=True)
class PartitionClock:
    """What the heartbeat thread needs to know about a partition (read from another
    thread: written as whole attributes only)."""

    event_time: int | None = None
    wall: float = 0.0  # time.monotonic() when the last record was handled
    offset: int = -1


def sweep_due(before: int | None, now_et: int, window_ms: int, heartbeat: bool) -> bool:
    """Whether moving the partition's event time from ``before`` to ``now_et`` sweeps."""
    return heartbeat or before is None or now_et // window_ms > before // window_ms


@dataclass(slots=True)
class Sweep:
    """The devices a sweep touches, in device order."""

    old: dict[str, DeviceState] = field(default_factory=dict)  # as they were
    advanced: dict[str, DeviceState] = field(default_factory=dict)  # windows taken out
    closed: list[tuple[str, WindowStats]] = field(default_factory=list)  # oldest first


def sweep(
    devices: Iterable[tuple[str, DeviceState]],
    now_et: int,
    spec: FeatureSpec,
    grace_ms: int,
    idle_ms: int | None,
    silence_ms: int,
) -> Sweep:
    """Advance the quiet ``devices`` to the partition's event time ``now_et``: the
    windows that closes, and the devices due for the silence check. ``idle_ms=None``
    means one window plus the grace period."""
    idle = idle_ms if idle_ms is not None else spec.window_ms + grace_ms
    out = Sweep()
    for dev, old in devices:
        if old.last_seen is None:
            continue
        quiet = old.last_seen <= now_et - idle
        silent_due = 0 < silence_ms <= now_et - old.last_seen
        if not (quiet or silent_due):
            continue
        st, closed = advance(old, now_et, spec, grace_ms) if quiet else (old, [])
        out.old[dev] = old
        out.advanced[dev] = st
        out.closed.extend((dev, stats) for stats in closed)
    return out
