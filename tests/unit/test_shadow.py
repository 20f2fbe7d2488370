"""Shadow evaluation and the live-scoring switch: a candidate version scored beside the
live one on the same windows, never published; and scoring off keeps only what alerts need."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from dashboard.fleet import FleetState
from iotml.core.errors import ConfigError, RecordError
from iotml.core.evaluations import LIVE, SHADOW, Evaluation
from iotml.core.options import build_settings
from iotml.core.schemas import schema
from models import AlertParams, Artifact, DeviceState, FeatureSpec, new_state
from models.closing import Closing, Shadow, close_windows
from models.device import PendingForecast
from models.drift import DriftDetector, DriftRule
from models.features import WindowStats
from processor.core import ALERTS, EVALUATIONS, PREDICTIONS, Output
from processor.metrics import Metrics
from processor.model import ActiveModel, Loader
from processor.settings import ProcessorSettings
from processor.shadow import NEWEST, ShadowHolder
from tests.unit.test_processor_core import SPEC, T0, Harness, model, predictions

WSPEC = FeatureSpec("temp", window_ms=10, k=0, horizon_ms=10, min_count=1)
PARAMS = AlertParams(residual_threshold=1.5)


def window(start: int, last: float) -> WindowStats:
    return WindowStats.from_points([(start + 1, last - 1.0), (start + 5, last)], start, start + 10)


def constant(value: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda X: np.full(len(X), value)


def run(values: list[float], scoring: bool = True, shadow: Shadow | None = None) -> list[Closing]:
    states: dict[str, DeviceState] = {"d": new_state("d")}
    out = []
    for i, v in enumerate(values):
        stats = [("d", window(i * 10, v))]
        live = constant(25.0)
        closing = close_windows(stats, states, WSPEC, PARAMS, "m", "v1", live, scoring, shadow)
        states = closing.states
        out.append(closing)
    return out


# -- the shared window stage (models/closing.py) ---------------------------------------


def test_the_shadow_is_scored_on_the_same_targets_and_makes_no_prediction_or_alert():
    plain = run([20.0, 22.0, 24.0])
    shadowed = run([20.0, 22.0, 24.0], shadow=Shadow("v2", constant(23.0)))
    live = [e for c in shadowed for e in c.evaluations]
    shadow = [e for c in shadowed for e in c.shadow_evaluations]
    assert live == [e for c in plain for e in c.evaluations]
    assert [(e.target_ts, e.role, e.model_version) for e in live] == [
        (20, LIVE, "v1"),
        (30, LIVE, "v1"),
    ]
    assert [(e.target_ts, e.role, e.model_version) for e in shadow] == [
        (20, SHADOW, "v2"),
        (30, SHADOW, "v2"),
    ]
    assert [e.forecast for e in shadow] == [23.0, 23.0]
    # the same actual and persistence as the live forecast of the same target
    assert [(e.actual, e.persistence) for e in shadow] == [(e.actual, e.persistence) for e in live]
    assert [p for c in shadowed for p in c.predictions] == [p for c in plain for p in c.predictions]
    assert all(p.model_version == "v1" for c in shadowed for p in c.predictions)
    # the anomaly check (actual vs the forecast made one horizon earlier) is the live one's
    assert [a for c in shadowed for a in c.alerts] == [a for c in plain for a in c.alerts]
    assert any(a.type == "anomaly" for c in plain for a in c.alerts)


def test_without_scoring_no_evaluation_and_pending_keeps_only_the_forecast():
    scored, unscored = run([20.0, 22.0, 24.0]), run([20.0, 22.0, 24.0], scoring=False)
    assert [e for c in unscored for e in c.evaluations] == []
    assert [a for c in unscored for a in c.alerts] == [a for c in scored for a in c.alerts]
    [(target, pending)] = unscored[-1].states["d"].pending.items()
    assert pending.forecast == 25.0 and pending.model_version is None
    assert unscored[-1].states["d"].to_dict()["pending"] == [[target, 25.0]]
    # no shadow forecast is kept when nothing is scored
    shadowed = run([20.0, 22.0], scoring=False, shadow=Shadow("v2", constant(23.0)))
    assert all(p.shadow is None for p in shadowed[-1].states["d"].pending.values())


def test_pending_shadow_forecasts_survive_the_state_and_old_states_still_load():
    state = new_state("d")
    state.pending = {
        10: PendingForecast(25.0, 20.0, "v1", 23.0, "v2"),
        20: PendingForecast(26.0, 21.0, "v1"),
    }
    stored = json.loads(json.dumps(state.to_dict()))
    assert stored["pending"] == [[10, 25.0, 20.0, "v1", 23.0, "v2"], [20, 26.0, 21.0, "v1"]]
    assert DeviceState.from_dict(stored).pending == state.pending
    old = {"device_id": "d", "pending": [[10, 25.0], [20, 26.0, 21.0, "v1"]]}
    loaded = DeviceState.from_dict(old).pending
    assert loaded[10].forecast == 25.0 and loaded[10].shadow is None
    assert loaded[20] == PendingForecast(26.0, 21.0, "v1")


def test_an_evaluation_names_its_role_and_older_records_are_live():
    e = Evaluation("d1", "temp", 20, 10, 23.0, 24.0, 22.0, "m", "v2", role=SHADOW)
    obj = json.loads(e.to_json())
    jsonschema.validate(obj, schema("evaluation"))
    assert obj["role"] == "shadow" and Evaluation.from_json(e.to_json()) == e
    del obj["role"]
    jsonschema.validate(obj, schema("evaluation"))
    assert Evaluation.from_dict(obj).role == LIVE
    with pytest.raises(RecordError):
        Evaluation.from_dict({**obj, "role": "challenger"})


def test_shadow_evaluations_give_a_live_skill_but_never_decide_drift():
    detector = DriftDetector(DriftRule(period_ms=100, margin=0.1, min_scored=1), lambda n, v: 0.9)
    for t in range(0, 400, 10):  # the live version is good, the shadow is bad
        detector.observe(Evaluation("d", "temp", t, 10, 10.0, 10.0, 9.0, "m", "v1"))
        event = detector.observe(
            Evaluation("d", "temp", t, 10, 0.0, 10.0, 9.0, "m", "v2", role=SHADOW)
        )
        assert event is None
    assert not detector.is_open("m")
    assert detector.live_skill("m", "v1")[0] == 1.0
    assert detector.live_skill("m", "v2")[0] == pytest.approx(-9.0)


def test_the_dashboard_shows_the_live_versions_scores_only():
    fleet = FleetState(max_points=10, max_devices=10)
    fleet.add_evaluation(Evaluation("d", "temp", 20, 10, 21.0, 22.0, 20.0, "m", "v1"))
    fleet.add_evaluation(Evaluation("d", "temp", 20, 10, 0.0, 22.0, 20.0, "m", "v2", role=SHADOW))
    assert fleet._devices["d"].skill == pytest.approx(0.5)


# -- the processor -----------------------------------------------------------------------


class PlusTwo:
    def predict(self, X: np.ndarray) -> np.ndarray:
        return X[:, SPEC.names().index("last")].astype(np.float64) + 2.0


def shadow_model(version: str = "v0002", spec: FeatureSpec = SPEC) -> ActiveModel:
    return ActiveModel("m", version, spec, AlertParams(), PlusTwo())


def feed(hz: Harness) -> list[Output]:
    out = []
    for s in range(80):
        out += hz.reading("a", T0 + s * 1000, temp=20.0 + s * 0.1)
    return out


def test_the_processor_scores_the_shadow_beside_the_live_model_and_publishes_only_the_live_one():
    candidate = shadow_model()
    plain, shadowed = Harness(), Harness(shadow=lambda: candidate)
    out, base = feed(shadowed), feed(plain)
    scored = [Evaluation.from_json(o.value) for o in out if o.topic == EVALUATIONS]
    by_role = {r: [e for e in scored if e.role == r] for r in (LIVE, SHADOW)}
    assert by_role[LIVE] and len(by_role[SHADOW]) == len(by_role[LIVE])
    assert {e.model_version for e in by_role[LIVE]} == {"v0001"}
    assert {e.model_version for e in by_role[SHADOW]} == {"v0002"}
    assert all(e.forecast - e.persistence == pytest.approx(2.0) for e in by_role[SHADOW])
    assert predictions(out) == predictions(base)
    assert [o for o in out if o.topic == ALERTS] == [o for o in base if o.topic == ALERTS]
    for version, evals in (("v0001", by_role[LIVE]), ("v0002", by_role[SHADOW])):
        labels = {"model": "m", "version": version}
        assert shadowed.sample("iotml_processor_forecasts_scored_total", **labels) == len(evals)
        total = shadowed.sample("iotml_processor_forecast_abs_error_total", **labels)
        assert total == pytest.approx(sum(e.abs_error for e in evals))


def test_a_shadow_that_is_the_live_version_or_no_longer_fits_stays_idle():
    for candidate in (
        shadow_model("v0001"),
        shadow_model(spec=FeatureSpec("temp", 10_000, 1, 30_000, 1)),
    ):
        hz = Harness(shadow=lambda c=candidate: c)
        scored = [Evaluation.from_json(o.value) for o in feed(hz) if o.topic == EVALUATIONS]
        assert scored and {e.role for e in scored} == {LIVE}


def test_the_processor_without_scoring_writes_no_evaluation_and_the_same_outputs():
    on, off = Harness(), Harness(scoring=False)
    out_on, out_off = feed(on), feed(off)
    assert [o for o in out_off if o.topic == EVALUATIONS] == []
    assert [o for o in out_off if o.topic != EVALUATIONS] == [
        o for o in out_on if o.topic != EVALUATIONS
    ]
    assert off.sample("iotml_processor_forecasts_scored_total", model="m", version="v0001") is None
    assert any(o.topic == PREDICTIONS for o in out_off)


# -- loading the shadow ----------------------------------------------------------------


def registry(tmp_path: Path, versions: list[str]) -> Path:
    for v in versions:
        (tmp_path / "m" / v).mkdir(parents=True)
        (tmp_path / "m" / v / "manifest.json").write_text("{}")
    return tmp_path


def loader(specs: dict[str, FeatureSpec]) -> Loader:
    def load(name: str, version: str) -> Artifact:
        spec, forecaster = specs[version], PlusTwo()
        return Artifact(name, version, Path(version), {}, spec, AlertParams(), forecaster)  # type: ignore[arg-type]

    return load


def test_the_shadow_loads_beside_the_live_model_and_newest_follows_new_versions(tmp_path: Path):
    specs = {"v0001": SPEC, "v0002": SPEC, "v0003": SPEC}
    reg = registry(tmp_path, ["v0001", "v0002"])
    metrics = Metrics()
    fixed = ShadowHolder(reg, "m", "v0002", metrics, loader(specs))
    assert fixed.load(model()).version == "v0002"
    newest = ShadowHolder(reg, "m", NEWEST, Metrics(), loader(specs))
    assert newest.load(model()).version == "v0002"
    registry(tmp_path, ["v0003"])
    newest.poll(model())
    assert newest.current is not None and newest.current.version == "v0003"
    assert (
        metrics.registry.get_sample_value(
            "iotml_processor_shadow_model_info", {"name": "m", "version": "v0002"}
        )
        == 1
    )


def test_a_shadow_that_does_not_fit_the_live_layout_or_is_missing_is_a_config_error(tmp_path: Path):
    other = FeatureSpec("temp", window_ms=10_000, k=2, horizon_ms=20_000, min_count=1)
    reg = registry(tmp_path, ["v0001", "v0002"])
    holder = ShadowHolder(reg, "m", "v0002", Metrics(), loader({"v0002": other}))
    with pytest.raises(ConfigError, match=r"IOTML_SHADOW_VERSION=v0002: .*its k is 2"):
        holder.load(model())
    with pytest.raises(ConfigError, match="no such version"):
        ShadowHolder(reg, "m", "v0009", Metrics(), loader({})).load(model())


def test_a_newer_version_that_does_not_fit_is_refused_and_the_shadow_keeps_running(tmp_path: Path):
    other = FeatureSpec("temp", window_ms=10_000, k=2, horizon_ms=20_000, min_count=1)
    reg = registry(tmp_path, ["v0001", "v0002"])
    holder = ShadowHolder(reg, "m", NEWEST, Metrics(), loader({"v0002": SPEC, "v0003": other}))
    holder.load(model())
    registry(tmp_path, ["v0003"])
    holder.poll(model())
    assert holder.current is not None and holder.current.version == "v0002"


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"shadow_version": "latest"}, "live version itself"),
        ({"shadow_version": "v0002", "live_scoring": False}, "needs IOTML_LIVE_SCORING"),
    ],
)
def test_shadow_settings_that_cannot_work_are_refused(values: dict[str, object], error: str):
    with pytest.raises(ConfigError, match=error):
        build_settings(ProcessorSettings, values)
