"""The partition clock: which devices a sweep advances, and when it sweeps."""

from __future__ import annotations

from models import DeviceState, FeatureSpec, add_reading, new_state, observe
from processor.clock import sweep, sweep_due

T0 = 1_700_000_000_000  # a multiple of 10 s
SPEC = FeatureSpec(metric="temp", window_ms=10_000, k=1, horizon_ms=20_000, min_count=1)


def device(dev: str, last_ts: int) -> tuple[str, DeviceState]:
    """A device whose one reading (its last) was at ``last_ts``."""
    st, _, _ = add_reading(new_state(dev), last_ts, 20.0, SPEC)
    st, _ = observe(st, last_ts)
    return dev, st


def test_the_clock_sweeps_on_crossing_a_window_boundary_and_on_every_heartbeat():
    assert sweep_due(None, T0, 10_000, heartbeat=False)
    assert not sweep_due(T0, T0 + 9_999, 10_000, heartbeat=False)
    assert sweep_due(T0 + 9_999, T0 + 10_000, 10_000, heartbeat=False)
    assert sweep_due(T0, T0 + 1, 10_000, heartbeat=True)


def test_a_sweep_closes_the_windows_of_devices_idle_for_a_window_plus_grace():
    devices = [device("busy", T0 + 19_000), device("quiet", T0 + 5_000)]
    due = sweep(devices, T0 + 20_000, SPEC, grace_ms=2_000, idle_ms=None, silence_ms=0)
    assert list(due.advanced) == ["quiet"]
    assert [(dev, w.start) for dev, w in due.closed] == [("quiet", T0)]
    assert due.advanced["quiet"].buffer == {} and due.old["quiet"].buffer


def test_a_device_due_for_the_silence_check_is_swept_without_closing_windows():
    devices = [device("d", T0 + 5_000)]
    due = sweep(devices, T0 + 12_000, SPEC, grace_ms=0, idle_ms=60_000, silence_ms=5_000)
    assert list(due.advanced) == ["d"] and due.closed == []
