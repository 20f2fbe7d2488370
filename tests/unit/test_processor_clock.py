"""The partition clock in the processor: which devices a sweep looks at, and what is due."""

from __future__ import annotations

from models import DeviceState, FeatureSpec, add_reading, new_state, observe
from processor.clock import rules_for, sweep, sweep_due
from processor.state import PartitionStore
from tests.unit.test_processor_state import DictState

T0 = 1_700_000_000_000  # a multiple of 10 s
SPEC = FeatureSpec(metric="temp", window_ms=10_000, k=1, horizon_ms=20_000, min_count=1)


def store_with(*devices: tuple[str, int], idle_ms: int) -> PartitionStore:
    """A partition whose devices each sent one reading at the given time (and were
    scheduled then, as the engine does)."""
    part = PartitionStore("ns", DictState(), SPEC.window_ms)
    for dev, ts in devices:
        st: DeviceState
        st, _, _ = add_reading(new_state(dev), ts, 20.0, SPEC)
        st, _ = observe(st, ts, seen_at=ts)
        part.save(dev, st, new_state(dev))
        part.schedule.push(dev, ts + idle_ms, ts)
    return part


def test_the_clock_sweeps_on_crossing_a_window_boundary_and_on_every_heartbeat():
    assert sweep_due(None, T0, 10_000, heartbeat=False)
    assert not sweep_due(T0, T0 + 9_999, 10_000, heartbeat=False)
    assert sweep_due(T0 + 9_999, T0 + 10_000, 10_000, heartbeat=False)
    assert sweep_due(T0, T0 + 1, 10_000, heartbeat=True)


def test_a_sweep_closes_the_windows_of_devices_idle_for_a_window_plus_grace():
    rules = rules_for(SPEC, grace_ms=2_000, idle_ms=None, silence_ms=0, ttl_ms=0)
    part = store_with(("quiet", T0 + 5_000), ("busy", T0 + 19_000), idle_ms=rules.idle_ms)
    due = sweep(part, T0 + 19_000, T0 + 30_000, SPEC, 2_000, rules)
    assert list(due.advanced) == ["quiet"]
    assert [(dev, w.start) for dev, w in due.closed] == [("quiet", T0)]
    assert due.advanced["quiet"].buffer == {} and due.old["quiet"].buffer


def test_a_device_due_for_the_silence_check_is_swept_without_closing_windows():
    rules = rules_for(SPEC, grace_ms=0, idle_ms=60_000, silence_ms=5_000, ttl_ms=0)
    part = store_with(("d", T0 + 5_000), idle_ms=5_000)
    due = sweep(part, T0 + 5_000, T0 + 20_000, SPEC, 0, rules)
    assert list(due.advanced) == ["d"] and due.closed == []
    assert due.due["d"].silent and not due.due["d"].quiet
