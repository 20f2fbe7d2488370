"""Cold start: the persistence baseline is a registry version that forecasts and alerts
from a device's first windows, its predictions say so, and ``iotml retrain`` replaces it
with the first network once there is enough data to beat it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from iotml.core.fleet import SyntheticFleet, history
from iotml.core.records import Prediction
from iotml.core.schemas import schema
from models.cli import train
from models.features import FeatureSpec
from models.registry import Registry
from models.replay import run
from models.retrain import RetrainConfig, retrain
from models.statistical import Persistence, baseline_params, publish_persistence
from processor.metrics import Metrics
from processor.model import ModelHolder

START = 1_700_000_000_000
SPEC = FeatureSpec("temperature", 10_000, 2, 20_000, 3)  # tests.model_fixtures' tiny layout
Points = list[tuple[str, int, float]]


@pytest.fixture(scope="module")
def fleet() -> Points:
    """15 minutes of 8 devices, one reading a second: enough to train a tiny network."""
    fleet = SyntheticFleet(8, step_ms=1000, start_ms=START, seed=1)
    return [(s.device_id, s.ts, s.value) for s in history(fleet, 900, START)]


def cold_registry(root: Path, spec: FeatureSpec = SPEC) -> Registry:
    registry = Registry(root)
    publish_persistence(registry, "m", spec, baseline_params(spec, cooldown_windows=24))
    return registry


def test_the_baseline_round_trips_through_the_registry_without_tensorflow(tmp_path: Path):
    cold_registry(tmp_path)
    code = (
        "import sys; from models.registry import Registry; "
        f"a = Registry({str(tmp_path)!r}).load('m'); "
        "print(a.kind, type(a.forecaster).__name__, a.spec.k, a.alert_params.deviation_z, "
        "'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["persistence", "Persistence", "2", "12.0", "False", "False"]


def test_train_baseline_publishes_persistence_with_the_commands_settings(tmp_path: Path):
    args = ["--baseline", "persistence", "--model-registry", str(tmp_path), "--model-name", "m"]
    args += ["--window", "1m", "--horizon", "5m", "--k", "3", "--low-limit", "-5"]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output
    manifest = Registry(tmp_path).manifest("m")
    assert manifest["kind"] == "persistence" and manifest["version"] == "v0001"
    spec = FeatureSpec.from_dict(manifest["spec"])
    assert (spec.window_ms, spec.horizon_ms, spec.k, spec.min_count) == (60_000, 300_000, 3, 1)
    params = manifest["alert_params"]
    assert params["anomaly_likelihood"] == 0.9999 and params["deviation_z"] == 12.0
    assert params["low_limit"] == -5 and params["high_limit"] is None  # only what was forced


def test_predictions_of_the_baseline_say_persistence_made_them(tmp_path: Path, fleet: Points):
    artifact = cold_registry(tmp_path).load("m")
    view = run(fleet[:2000], artifact)
    assert view.predictions
    for p in view.predictions:
        assert p.model_kind == "persistence"
        assert p.forecast == pytest.approx(p.last_value, rel=1e-6)  # float32 features
        jsonschema.validate(p.to_dict(), schema("prediction"))
        assert Prediction.from_json(p.to_json()) == p


def test_a_prediction_without_a_kind_still_parses():
    p = Prediction("d", "t", 0, 10, 20, 30, 1.0, 1.0, {}, "m", "v0001")
    obj = p.to_dict()
    assert "model_kind" not in obj
    jsonschema.validate(obj, schema("prediction"))
    assert Prediction.from_dict(obj).model_kind is None


def test_the_processor_runs_the_baseline_then_swaps_to_the_first_network(tmp_path: Path):
    from tests.model_fixtures import train_tiny_artifact

    cold_registry(tmp_path)
    holder = ModelHolder(tmp_path, "m", Metrics())
    model = holder.poll()
    assert model is not None and model.version == "v0001"
    assert isinstance(model.forecaster, Persistence)
    train_tiny_artifact(tmp_path, name="m", window="10s", horizon="20s", epochs=2)
    model = holder.poll()
    # the network has the baseline's layout: swapped live, no restart
    assert model is not None and model.version == "v0002"
    assert model.artifact is not None and model.artifact.kind == "network"


FAST = RetrainConfig(epochs=60, patience=8)


def test_retrain_from_the_baseline_promotes_a_network_that_beats_it(tmp_path: Path, fleet: Points):
    registry = cold_registry(tmp_path)
    record = retrain(registry, "m", lambda metric: fleet, FAST, "fleet")
    assert record["promoted"], record["reason"]
    assert record["champion"]["kind"] == "persistence"
    assert record["challenger"]["kind"] == "network"
    assert record["challenger"]["mae"] < record["champion"]["mae"] * 0.98
    assert registry.latest("m") == "v0002"
    network = registry.load("m")
    assert network.kind == "network" and network.spec == SPEC
    assert network.manifest["training"]["hidden"] == [32, 16]  # the training defaults
    json.dumps(record)  # a plain record


def test_retrain_from_the_baseline_with_too_little_data_keeps_it(tmp_path: Path, fleet: Points):
    registry = cold_registry(tmp_path)
    short = RetrainConfig(epochs=5, holdout="14m")  # one minute left to train on
    record = retrain(registry, "m", lambda metric: fleet, short, "fleet")
    assert not record["promoted"]
    assert record["reason"].startswith("too little data to train the first network")
    assert "training examples" in record["reason"]
    assert registry.latest("m") == "v0001"
    empty = retrain(registry, "m", lambda metric: [], short, "nothing yet")
    assert not empty["promoted"] and empty["reason"].startswith("too little data")
    assert registry.latest("m") == "v0001"
