"""Drift detection: model_degraded opens when the live skill stays below the validation
skill minus a margin for a whole period, and clears when it recovers (no Kafka)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from iotml.core.evaluations import Evaluation
from iotml.core.model_events import ModelEvent, model_event_id
from iotml.core.schemas import schema
from models.drift import DriftDetector, DriftRule, SlidingSums
from models.registry import validation_skill

STEP = 10_000  # one target time per 10 s window
RULE = DriftRule(period_ms=60_000, margin=0.1, min_scored=20)
VALIDATION = {"v0001": 0.3, "v0002": 0.5}  # lines at 0.2 and 0.4


def evals(version: str, start: int, end: int, skill: float, devices: int = 5) -> list[Evaluation]:
    """Forecasts for target times start, start + STEP, ... < end whose skill is ``skill``
    (persistence error 1, model error 1 - skill)."""
    return [
        Evaluation(f"d{d}", "temp", t, 20_000, 10.0 - (1.0 - skill), 10.0, 9.0, "m", version)
        for t in range(start, end, STEP)
        for d in range(devices)
    ]


def run(detector: DriftDetector, stream: list[Evaluation]) -> list[ModelEvent]:
    return [ev for e in stream if (ev := detector.observe(e)) is not None]


def detector(rule: DriftRule = RULE) -> DriftDetector:
    return DriftDetector(rule, lambda name, version: VALIDATION.get(version))


def test_live_skill_is_a_ratio_of_sums_over_the_last_period():
    sums = SlidingSums(period_ms=30_000)
    sums.add(0, 1.0, 2.0)
    sums.add(10_000, 3.0, 2.0)
    assert sums.skill() == pytest.approx(1 - 4 / 4)
    sums.add(40_000, 0.5, 1.0)  # 0 and 10 s are now more than a period behind
    assert (sums.n, sums.skill()) == (1, pytest.approx(0.5))
    assert sums.add(5_000, 9.0, 1.0) is False and sums.late == 1


def test_a_steady_model_raises_nothing():
    assert run(detector(), evals("v0001", 0, 600_000, skill=0.3)) == []


def test_degraded_opens_a_whole_period_after_the_skill_fell_below_the_line():
    stream = evals("v0001", 0, 120_000, 0.3) + evals("v0001", 120_000, 400_000, -0.2)
    [event] = run(detector(), stream)
    assert (event.type, event.event, event.model_version) == ("model_degraded", "open", "v0001")
    assert event.ts - event.episode_start == RULE.period_ms
    assert 120_000 <= event.episode_start <= 120_000 + RULE.period_ms
    assert event.live_skill < event.validation_skill - event.margin
    assert (event.validation_skill, event.window_ms) == (0.3, 60_000)
    assert event.event_id == model_event_id("m", "model_degraded", event.episode_start)


def test_a_period_skill_below_the_line_for_less_than_a_period_does_not_open():
    d = detector()
    stream = (
        evals("v0001", 0, 120_000, 0.3)
        + evals("v0001", 120_000, 140_000, -0.1)  # the period's skill is below for 40 s
        + evals("v0001", 140_000, 600_000, 0.3)
    )
    assert run(d, stream) == []
    assert d.live_skill("m", "v0001") == (pytest.approx(0.3), 30)


def test_nothing_is_decided_on_fewer_than_min_scored_forecasts():
    few = detector(DriftRule(period_ms=60_000, margin=0.1, min_scored=1000))
    assert run(few, evals("v0001", 0, 600_000, -1.0)) == []


def test_a_version_without_validation_skill_is_never_judged():
    unknown = DriftDetector(RULE, lambda name, version: None)
    assert run(unknown, evals("v0001", 0, 600_000, -1.0)) == []


def test_the_episode_clears_when_the_next_version_recovers_against_its_own_skill():
    d = detector()
    [opened] = run(d, evals("v0001", 0, 100_000, 0.3) + evals("v0001", 100_000, 300_000, -0.2))
    # after the swap, late forecasts of v0001 still arrive between those of v0002
    late_v1 = evals("v0001", 300_000, 320_000, -0.2)
    v2 = evals("v0002", 310_000, 600_000, 0.45)
    [cleared] = run(d, v2[:10] + late_v1 + v2[10:])
    assert (cleared.event, cleared.model_version) == ("cleared", "v0002")
    assert cleared.event_id == opened.event_id and cleared.episode_start == opened.episode_start
    assert cleared.live_skill >= 0.5 - 0.1
    assert not d.is_open("m")


def test_a_new_version_as_bad_as_the_old_keeps_the_episode_open():
    d = detector()
    run(d, evals("v0001", 0, 100_000, 0.3) + evals("v0001", 100_000, 300_000, -0.2))
    assert run(d, evals("v0002", 300_000, 900_000, 0.1)) == []
    assert d.is_open("m")


def test_a_restored_open_episode_is_not_opened_again_and_can_clear():
    d = detector()
    opened = run(d, evals("v0001", 0, 100_000, 0.3) + evals("v0001", 100_000, 300_000, -0.2))[0]
    resumed = detector()
    resumed.restore(opened)
    events = run(
        resumed, evals("v0001", 300_000, 600_000, -0.2) + evals("v0001", 600_000, 900_000, 0.3)
    )
    assert [(e.event, e.event_id) for e in events] == [("cleared", opened.event_id)]


def test_a_model_event_round_trips_and_matches_its_schema():
    event = ModelEvent(
        model_event_id("m", "model_degraded", 5), "m", "v0001", "model_degraded", "open",
        65, 5, -0.2, 0.3, 0.1, 60, 100, "live skill -0.200 below 0.200 since 1970-01-01T00:00:00Z",
    )  # fmt: skip
    obj = json.loads(event.to_json())
    jsonschema.validate(obj, schema("model_event"))
    assert ModelEvent.from_json(event.to_json()) == event


def test_validation_skill_is_stored_or_computed_for_older_manifests():
    assert validation_skill({"validation": {"val_skill": 0.25, "val_mae": 9}}) == 0.25
    old = {"validation": {"val_mae": 0.6, "val_persistence_mae": 0.8}}
    assert validation_skill(old) == pytest.approx(0.25)
    assert validation_skill({"validation": {"val_mae": 0.6, "val_persistence_mae": 0.0}}) is None
    assert validation_skill({}) is None
