import itertools
from pathlib import Path

import pytest

from bridge.settings import SimulatorSettings
from bridge.simulate import build_fleet
from iotml.core.fleet import (
    DROP_C,
    Fault,
    ReplayFleet,
    SyntheticFleet,
    history,
    load_series,
    parse_fault,
)

HOUR = 3_600_000


def values(fleet, index: int, ticks: int) -> list[float | None]:
    return [fleet.value(index, t)[0] for t in range(ticks)]


def test_same_seed_gives_the_same_fleet_and_devices_differ():
    a = values(SyntheticFleet(2, step_ms=60_000, seed=3), 0, 50)
    b = values(SyntheticFleet(2, step_ms=60_000, seed=3), 0, 50)
    other = values(SyntheticFleet(2, step_ms=60_000, seed=3), 1, 50)
    assert a == b
    assert a != other


def test_synthetic_temperatures_stay_physical_and_follow_a_daily_cycle():
    fleet = SyntheticFleet(1, step_ms=60_000, seed=1)
    day = [v for v in values(fleet, 0, 24 * 60) if v is not None]
    assert all(-10 < v < 120 for v in day)
    assert max(day) - min(day) > 2  # the day and the load move it


def test_overheat_ramps_up_after_onset():
    base = values(SyntheticFleet(1, step_ms=60_000, seed=2), 0, 180)
    hot = values(
        SyntheticFleet(1, step_ms=60_000, seed=2, faults=[Fault("*", "overheat", HOUR)]),
        0,
        180,
    )
    assert hot[:60] == base[:60]
    assert hot[179] - base[179] == pytest.approx(15 * (179 - 60) / 60, abs=0.01)


def test_drop_stuck_and_dropout_faults():
    faults = [
        parse_fault("dev-0000:drop"),
        parse_fault("dev-0001:stuck@2m"),
        parse_fault("dev-0002:dropout@1m"),
    ]
    fleet = SyntheticFleet(3, step_ms=60_000, seed=4, faults=faults)
    plain = SyntheticFleet(3, step_ms=60_000, seed=4)
    assert fleet.value(0, 0)[0] == pytest.approx(plain.value(0, 0)[0] - DROP_C)
    stuck = values(fleet, 1, 10)
    assert len(set(stuck[2:])) == 1 and stuck[0] != stuck[2]
    assert values(fleet, 2, 3) == [plain.value(2, 0)[0], None, None]


def test_malformed_fault_marks_the_device_not_the_values():
    fleet = SyntheticFleet(2, faults=[parse_fault("dev-0001:malformed")])
    assert fleet.malformed(1, 0) and not fleet.malformed(0, 0)


@pytest.mark.parametrize("bad", ["overheat", "dev-1:melt", "dev-1:drop@soon", ":drop"])
def test_bad_fault_specs_are_rejected(bad: str):
    with pytest.raises(ValueError):
        parse_fault(bad)


def test_history_yields_every_device_every_tick_except_dropouts():
    fleet = SyntheticFleet(3, step_ms=1000, faults=[parse_fault("dev-0002:dropout")])
    samples = list(history(fleet, 10, start_ms=5_000))
    assert len(samples) == 20
    assert samples[0].ts == 5_000 and samples[-1].ts == 14_000
    assert {s.device_id for s in samples} == {"dev-0000", "dev-0001"}


def test_replay_offsets_each_device_in_value_and_phase(tmp_path: Path):
    csv = tmp_path / "s.csv"
    csv.write_text(
        "timestamp,value\n" + "".join(f"2014-01-01 00:{m:02d}:00,{m}.0\n" for m in range(0, 50, 5))
    )
    series, step = load_series(csv)
    assert step == 300_000 and series[:2] == [0.0, 5.0]
    fleet = ReplayFleet(series, 3, step_ms=step, seed=1)
    assert values(fleet, 0, 3) == [0.0, 5.0, 10.0]
    assert values(fleet, 1, 3) != values(fleet, 0, 3)


def test_replay_of_the_nab_series(nab_csv: Path):
    fleet = ReplayFleet.from_csv(nab_csv, 4)
    assert fleet.step_ms == 300_000
    assert all(v is not None and 0 < v < 150 for v in values(fleet, 3, 100))


def test_sped_up_replay_shortens_the_wall_clock_interval(tmp_path: Path):
    csv = tmp_path / "s.csv"
    csv.write_text("timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,2\n")
    s = SimulatorSettings(sim_csv=csv, sim_speedup=300, sim_devices=2)
    _, interval = build_fleet(s)
    assert interval == 1000


def test_a_regime_change_keeps_the_band_but_changes_the_dynamics():
    from statistics import mean, pstdev

    from iotml.core.fleet import SyntheticFleet, parse_fault

    def run(faults):
        fleet = SyntheticFleet(1, step_ms=10_000, faults=faults, seed=3)
        return [fleet.value(0, t)[0] for t in range(6 * 360)]  # 6 h at 10 s

    calm = run([])
    changed = run([parse_fault("dev-0000:regime@1h")])
    assert calm[:360] == changed[:360]  # the same machine until the onset
    after, before = changed[360:], calm[360:]
    lo, hi = min(calm) - 5, max(calm) + 5
    assert all(lo <= v <= hi for v in after)  # still inside its normal band
    steps = lambda xs: pstdev([b - a for a, b in itertools.pairwise(xs)])  # noqa: E731
    assert steps(after) > 2 * steps(before)  # but it moves much faster
    assert abs(mean(after) - mean(before)) < 10  # no level drop
