"""The partition clock: quiet, silent and forgotten devices, whatever one device's clock says."""

from __future__ import annotations

from models.clock import ClockRules, DictStore, Schedule, device_time, due, partition_time_after

RULES = ClockRules(idle_ms=10_000, silence_ms=60_000, ttl_ms=600_000, bucket_ms=10_000)


def run(readings: list[tuple[str, int]]) -> tuple[int, dict[str, tuple[int, int]]]:
    """Partition time and per-device (last_seen, seen_at) after readings in order."""
    p: int | None = None
    devices: dict[str, tuple[int, int]] = {}
    for dev, ts in readings:
        last, seen = devices.get(dev, (None, None))
        p = partition_time_after(p, last, seen, ts, RULES)
        devices[dev] = (ts if last is None else max(last, ts), p)
    assert p is not None
    return p, devices


def test_a_device_minutes_fast_never_makes_its_neighbours_look_quiet():
    start = 1_700_000_000_000
    readings = []
    for s in range(600):
        readings.append(("fast", start + 540_000 + s * 1000))  # 9 minutes ahead
        readings += [(f"dev-{i}", start + s * 1000) for i in range(5)]
    p, devices = run(readings)
    for i in range(5):
        _, seen_at = devices[f"dev-{i}"]
        assert not due(p, seen_at, RULES, silent_open=False).quiet


def test_the_fast_device_arriving_first_does_not_move_the_others_either():
    start = 1_700_000_000_000
    readings = [("fast", start + 540_000)]
    for s in range(1, 120):
        readings += [(f"dev-{i}", start + s * 1000) for i in range(5)]
        readings.append(("fast", start + 540_000 + s * 1000))
    p, devices = run(readings)
    last, seen_at = devices["dev-0"]
    assert last <= device_time(p, last, seen_at) <= last + 1000  # one reading's gap at most
    assert not due(p, seen_at, RULES, silent_open=False).quiet


def test_a_forward_clock_jump_moves_the_partition_by_at_most_half_the_idle_time():
    p = partition_time_after(100_000, 99_000, 100_000, 99_000 + 3_600_000, RULES)
    assert p == 100_000 + RULES.max_step


def test_a_device_that_stops_is_quiet_then_silent_then_forgotten():
    start = 1_000_000
    assert due(start + 9_999, start, RULES, False).quiet is False
    d = due(start + 10_000, start, RULES, False)
    assert d.quiet and not d.silent and d.next_due == start + 60_000
    d = due(start + 60_000, start, RULES, False)
    assert d.silent and d.next_due == start + 600_000
    d = due(start + 600_000, start, RULES, True)
    assert d.forget and d.next_due is None


def test_the_schedule_pops_only_the_devices_due_in_the_buckets_crossed():
    kv = DictStore()
    sched = Schedule(kv, "ns/", 10_000)
    sched.push("a", 15_000, now=0)
    sched.push("b", 25_000, now=0)
    sched.push("c", 16_000, now=0)
    assert sorted(sched.pop(0, 19_999)) == []
    assert sorted(sched.pop(0, 20_000)) == ["a", "c"]
    assert list(sched.pop(20_000, 30_000)) == ["b"]


def test_a_device_pushed_in_the_past_is_popped_at_the_next_boundary():
    kv = DictStore()
    sched = Schedule(kv, "", 10_000)
    sched.push("late", 1_000, now=55_000)
    assert list(sched.pop(55_000, 59_999)) == []
    assert list(sched.pop(55_000, 60_000)) == ["late"]


def test_no_record_of_the_schedule_grows_with_the_fleet():
    kv = DictStore()
    sched = Schedule(kv, "", 10_000)
    for i in range(10_000):
        sched.push(f"device-{i:05d}-" + "x" * 100, 5_000, now=0)
    assert max(len(str(v)) for v in kv.values()) < 300
    assert len(list(sched.pop(0, 10_000))) == 10_000
    for i in range(10_000):
        sched.forget(f"device-{i:05d}-" + "x" * 100)
    assert not kv
