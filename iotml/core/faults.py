"""Faults injected into the simulated fleet (:mod:`iotml.core.fleet`).

Spelled ``device:kind[@start[-end]]``, times in simulated time since the start: the fault
holds from ``start`` (default 0) until ``end`` (default: for good), after which the
device is back to normal. ``overheat`` adds a ramp of :data:`OVERHEAT_C_PER_H`; ``drop`` a
sudden fall of :data:`DROP_C`; ``stuck`` repeats the value at the onset; ``dropout`` stops
the device; ``malformed`` makes the simulator send bad payloads (the values are
unaffected); ``regime`` changes the machine's dynamics while it stays inside its normal
band (load changes :data:`REGIME_LOAD_FACTOR` times as often, a thermal response
:data:`REGIME_TAU_FACTOR` times as fast, :data:`REGIME_NOISE_FACTOR` times the sensor
noise): no level shift, but a model trained on the old dynamics forecasts worse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from iotml.core.durations import parse_duration_ms

FAULT_KINDS = ("overheat", "drop", "stuck", "dropout", "malformed", "regime")
REGIME_LOAD_FACTOR = 20.0
REGIME_TAU_FACTOR = 0.1
REGIME_NOISE_FACTOR = 3.0
OVERHEAT_C_PER_H = 15.0
OVERHEAT_MAX_C = 60.0
DROP_C = 25.0


@dataclass(frozen=True, slots=True)
class Fault:
    device: str  # a device id, or "*" for every device
    kind: str
    after_ms: int = 0
    until_ms: int | None = None  # ``None``: the fault never ends

    def applies_to(self, device_id: str) -> bool:
        return self.device in ("*", device_id)

    def active(self, elapsed_ms: int) -> bool:
        """Whether the fault holds ``elapsed_ms`` after the start (the end is exclusive)."""
        return self.after_ms <= elapsed_ms and (self.until_ms is None or elapsed_ms < self.until_ms)


def parse_fault(text: str) -> Fault:
    """``device:kind[@start[-end]]``, e.g. ``dev-0003:drop@1m-5m``; raises ``ValueError``."""
    device, sep, rest = text.strip().rpartition(":")
    kind, _, when = rest.partition("@")
    if not sep or not device:
        raise ValueError(f"fault {text!r}: expected device:kind[@start[-end]]")
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault {text!r}: kind must be one of {', '.join(FAULT_KINDS)}")
    start, dash, end = when.partition("-")
    if dash and not (start and end):
        raise ValueError(f"fault {text!r}: expected @start-end, e.g. @1m-5m")
    after = parse_duration_ms(start) if start else 0
    until = parse_duration_ms(end) if dash else None
    if until is not None and until <= after:
        raise ValueError(f"fault {text!r}: the end must come after the start")
    return Fault(device, kind, after, until)


class FaultState:
    """One device's faults over its ticks: which holds now, and what it does to a value."""

    def __init__(self, faults: Sequence[Fault]) -> None:
        self.faults = sorted(faults, key=lambda f: f.after_ms)
        self._stuck: tuple[Fault, float] | None = None  # the stuck fault and its value

    def active(self, elapsed_ms: int) -> Fault | None:
        """The latest-starting fault that holds now (``malformed`` aside)."""
        current = None
        for fault in self.faults:
            if fault.active(elapsed_ms) and fault.kind != "malformed":
                current = fault
        return current

    def malformed(self, elapsed_ms: int) -> bool:
        return any(f.kind == "malformed" and f.active(elapsed_ms) for f in self.faults)

    def apply(self, elapsed_ms: int, value: float) -> tuple[float | None, str | None]:
        fault = self.active(elapsed_ms)
        if fault is None or fault.kind != "stuck":
            self._stuck = None  # a later stuck fault holds its own onset value
        if fault is None:
            return value, None
        if fault.kind == "overheat":
            hours = (elapsed_ms - fault.after_ms) / 3_600_000
            return value + min(OVERHEAT_MAX_C, OVERHEAT_C_PER_H * hours), "overheat"
        if fault.kind == "drop":
            return value - DROP_C, "drop"
        if fault.kind == "regime":  # the fleet changed the dynamics (SyntheticFleet._raw)
            return value, "regime"
        if fault.kind == "stuck":
            if self._stuck is None or self._stuck[0] != fault:
                self._stuck = (fault, value)
            return self._stuck[1], "stuck"
        return None, "dropout"
