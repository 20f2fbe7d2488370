"""Simulator faults that end: ``device:kind@start-end`` holds from start until end, after
which the device is back to normal."""

from __future__ import annotations

import pytest

from bridge.settings import SimulatorSettings
from iotml.core.faults import DROP_C, Fault, parse_fault
from iotml.core.fleet import SyntheticFleet, history

MIN = 60_000


def values(fleet: SyntheticFleet, index: int, ticks: int) -> list[float | None]:
    return [fleet.value(index, t)[0] for t in range(ticks)]


def test_a_fault_spec_takes_an_optional_end():
    assert parse_fault("dev-0003:drop@1m-5m") == Fault("dev-0003", "drop", MIN, 5 * MIN)
    assert parse_fault("dev-0003:drop@1m") == Fault("dev-0003", "drop", MIN, None)
    assert parse_fault("*:stuck") == Fault("*", "stuck", 0, None)


@pytest.mark.parametrize(
    "bad",
    [
        "dev-1:drop@5m-1m",
        "dev-1:drop@1m-1m",
        "dev-1:drop@-5m",
        "dev-1:drop@1m-",
        "dev-1:drop@1m-soon",
    ],
)
def test_an_end_must_be_a_duration_after_the_start(bad: str):
    with pytest.raises(ValueError):
        parse_fault(bad)


def test_the_simulator_settings_accept_an_end_and_reject_a_bad_one():
    assert SimulatorSettings(sim_faults=["dev-0000:drop@1m-2m"]).sim_faults == [
        "dev-0000:drop@1m-2m"
    ]
    with pytest.raises(ValueError, match="end must come after"):
        SimulatorSettings(sim_faults=["dev-0000:drop@2m-1m"])


def test_a_drop_holds_from_start_until_end_then_the_device_is_normal_again():
    plain = SyntheticFleet(1, step_ms=MIN, seed=4)
    faulty = SyntheticFleet(1, step_ms=MIN, seed=4, faults=[parse_fault("dev-0000:drop@2m-5m")])
    got = [faulty.value(0, t) for t in range(8)]
    want = values(plain, 0, 8)
    assert [fault for _, fault in got] == [None, None, "drop", "drop", "drop", None, None, None]
    for t, (value, _) in enumerate(got):
        assert value == pytest.approx(want[t] - (DROP_C if 2 <= t < 5 else 0.0))


def test_an_overheat_ramp_stops_at_its_end():
    plain = values(SyntheticFleet(1, step_ms=MIN, seed=2), 0, 180)
    hot = values(
        SyntheticFleet(1, step_ms=MIN, seed=2, faults=[parse_fault("dev-0000:overheat@1h-2h")]),
        0,
        180,
    )
    assert hot[:60] == plain[:60] and hot[120:] == plain[120:]
    assert hot[119] - plain[119] == pytest.approx(15 * 59 / 60, abs=0.01)


def test_a_dropout_that_ends_resumes_publishing():
    fleet = SyntheticFleet(2, step_ms=1000, faults=[parse_fault("dev-0001:dropout@2s-4s")])
    seen = [(s.device_id, s.ts) for s in history(fleet, 6, start_ms=0)]
    assert [ts for d, ts in seen if d == "dev-0001"] == [0, 1000, 4000, 5000]


def test_a_second_stuck_episode_holds_its_own_onset_value():
    faults = [parse_fault("dev-0000:stuck@2m-4m"), parse_fault("dev-0000:stuck@6m-8m")]
    stuck = values(SyntheticFleet(1, step_ms=MIN, seed=5, faults=faults), 0, 9)
    plain = values(SyntheticFleet(1, step_ms=MIN, seed=5), 0, 9)
    assert stuck[2] == stuck[3] == plain[2]
    assert stuck[4:6] == plain[4:6]
    assert stuck[6] == stuck[7] == plain[6] != plain[2]
    assert stuck[8] == plain[8]


def test_a_malformed_episode_ends():
    fleet = SyntheticFleet(1, faults=[parse_fault("dev-0000:malformed@1s-3s")])
    assert [fleet.malformed(0, t) for t in range(5)] == [False, True, True, False, False]


def test_a_later_fault_takes_over_while_it_lasts_and_the_earlier_one_resumes():
    faults = [parse_fault("dev-0000:drop@1m"), parse_fault("dev-0000:dropout@3m-4m")]
    fleet = SyntheticFleet(1, step_ms=MIN, seed=1, faults=faults)
    assert [fleet.value(0, t)[1] for t in range(6)] == [
        None,
        "drop",
        "drop",
        "dropout",
        "drop",
        "drop",
    ]
