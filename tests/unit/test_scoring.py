"""Live scoring: every forecast scored when its target window closes, as `evaluate` does."""

from __future__ import annotations

import json

import jsonschema
import pytest

from iotml.core.evaluations import Evaluation
from iotml.core.schemas import schema
from models import AlertParams, FeatureSpec, new_state
from models.closing import close_windows
from models.features import WindowStats
from processor.core import EVALUATIONS
from tests.unit.test_processor_core import T0, Harness, model


def test_an_evaluation_round_trips_and_matches_its_schema():
    e = Evaluation("d1", "temp", 5_400_000, 3_600_000, 80.1, 81.0, 79.0, "temp", "v1")
    obj = json.loads(e.to_json())
    jsonschema.validate(obj, schema("evaluation"))
    assert obj["abs_error"] == pytest.approx(0.9) and obj["persistence_abs_error"] == 2.0
    assert Evaluation.from_json(e.to_json()) == e


def test_a_forecast_is_scored_against_its_target_windows_last_value_and_persistence():
    spec = FeatureSpec("temp", window_ms=10, k=0, horizon_ms=10, min_count=1)
    params = AlertParams()

    def w(start: int, last: float) -> WindowStats:
        return WindowStats.from_points(
            [(start + 1, last - 1.0), (start + 5, last)], start, start + 10
        )

    states = {"d": new_state("d")}
    first = close_windows(
        [("d", w(0, 20.0))], states, spec, params, "m", "v7", lambda X: X[:, :1] * 0 + 25.0
    )
    assert first.evaluations == []
    second = close_windows([("d", w(10, 22.0))], first.states, spec, params, "m", "v8", None)
    [e] = second.evaluations
    assert (e.forecast, e.actual, e.persistence, e.model_version) == (25.0, 22.0, 20.0, "v7")
    assert (e.target_ts, e.abs_error, e.persistence_abs_error) == (20, 3.0, 2.0)


def test_the_processor_writes_each_scored_forecast_and_sums_that_add_up_across_replicas():
    hz = Harness(model(params=AlertParams(overheat_threshold=100.0)))
    out = []
    for s in range(60):
        out += hz.reading("a", T0 + s * 1000, temp=20.0 + s * 0.1)
    scored = [Evaluation.from_json(o.value) for o in out if o.topic == EVALUATIONS]
    assert scored and all(e.device_id == "a" and e.model_version == "v0001" for e in scored)
    labels = {"model": "m", "version": "v0001"}
    assert hz.sample("iotml_processor_forecasts_scored_total", **labels) == len(scored)
    total = hz.sample("iotml_processor_forecast_abs_error_total", **labels)
    assert total == pytest.approx(sum(e.abs_error for e in scored))
    persistence = hz.sample("iotml_processor_persistence_abs_error_total", **labels)
    assert persistence == pytest.approx(sum(e.persistence_abs_error for e in scored))
