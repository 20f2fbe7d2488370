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

from dataclasses import dataclass

from models.clock import rules_for
from models.partition import Sweep, sweep, sweep_due

__all__ = [
    "HEARTBEAT_ADVANCE",
    "HEARTBEAT_PROBE",
    "PartitionClock",
    "Sweep",
    "rules_for",
    "sweep",
    "sweep_due",
]

#: Values of the heartbeat header: move the partition clock, or only learn it.
HEARTBEAT_ADVANCE, HEARTBEAT_PROBE = "advance", "probe"


@dataclass(slots=True)
class PartitionClock:
    """What the heartbeat thread needs to know about a partition (read from another
    thread: written as whole attributes only)."""

    event_time: int | None = None
    wall: float = 0.0  # time.monotonic() when the last record was handled
    offset: int = -1
