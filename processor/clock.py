"""The partition clock in the processor: which devices are due, and what is due for them.

The rule is :mod:`models.clock`'s (the batch path replays the same one): the partition
time moves with each device's own clock, anchored where the partition time stood at its
previous reading, so a device whose clock is off never closes its neighbours' windows.
Each time the partition time crosses a window boundary, the devices scheduled in the
buckets crossed are looked at, and only those: a quiet device's windows close at its own
estimated time, ``device_silent`` opens after the silence time, and a device silent past
its time-to-live is forgotten (its open alerts clear first). When a whole partition is
idle, the heartbeat records of :mod:`processor.heartbeat` move its time on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models import DeviceState, FeatureSpec, WindowStats, advance
from models.clock import ClockRules, Due, device_time, due
from processor.state import PartitionStore

#: Values of the heartbeat header: move the partition clock, or only learn it.
HEARTBEAT_ADVANCE, HEARTBEAT_PROBE = "advance", "probe"


@dataclass(slots=True)
class PartitionClock:
    """What the heartbeat thread needs to know about a partition (read from another
    thread: written as whole attributes only)."""

    event_time: int | None = None
    wall: float = 0.0  # time.monotonic() when the last record was handled
    offset: int = -1


def rules_for(
    spec: FeatureSpec, grace_ms: int, idle_ms: int | None, silence_ms: int, ttl_ms: int
) -> ClockRules:
    """The clock's thresholds; ``idle_ms=None`` means one window plus the grace period."""
    idle = idle_ms if idle_ms is not None else spec.window_ms + grace_ms
    return ClockRules(idle, silence_ms, ttl_ms, spec.window_ms)


def sweep_due(before: int | None, now_et: int, window_ms: int, heartbeat: bool) -> bool:
    """Whether moving the partition time from ``before`` to ``now_et`` sweeps."""
    return heartbeat or before is None or now_et // window_ms > before // window_ms


@dataclass(slots=True)
class Sweep:
    """The devices a sweep touches, in the order they were due."""

    old: dict[str, DeviceState] = field(default_factory=dict)  # as they were
    advanced: dict[str, DeviceState] = field(default_factory=dict)  # windows taken out
    closed: list[tuple[str, WindowStats]] = field(default_factory=list)  # oldest first
    due: dict[str, Due] = field(default_factory=dict)


def sweep(
    part: PartitionStore,
    before: int,
    now_et: int,
    spec: FeatureSpec,
    grace_ms: int,
    rules: ClockRules,
) -> Sweep:
    """The devices due as the partition time moves from ``before`` to ``now_et``, with
    the windows of the quiet ones closed at their own estimated time."""
    out = Sweep()
    for dev in part.schedule.pop(before, now_et):
        old = part.device(dev)
        if old.last_seen is None or old.seen_at is None:  # its state is gone
            part.forget(dev)
            continue
        d = due(now_et, old.seen_at, rules, old.episodes["device_silent"].open)
        st, closed = old, list[WindowStats]()
        if d.quiet:
            own = device_time(now_et, old.last_seen, old.seen_at)
            st, closed = advance(old, own, spec, grace_ms)
        out.old[dev] = old
        out.advanced[dev] = st
        out.due[dev] = d
        out.closed.extend((dev, stats) for stats in closed)
    return out
