"""Registry, artifact loading, the fast forecaster and evaluate/train on real data."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from models import ArtifactNotFound, IncompatibleArtifact, Registry
from models.cli import evaluate, models_group
from models.replay import run
from tests.model_fixtures import tiny_points, train_tiny_artifact


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    train_tiny_artifact(root)
    train_tiny_artifact(root, seed=7)
    return root


def test_versions_latest_and_rollback(registry: Path) -> None:
    reg = Registry(registry)
    assert reg.versions("temp") == ["v0001", "v0002"]
    assert reg.latest("temp") == "v0002"
    reg.promote("temp", "v0001")
    assert reg.load("temp", with_model=False).version == "v0001"
    reg.promote("temp", "v0002")


def test_missing_model_and_version_are_clear_errors(tmp_path: Path, registry: Path) -> None:
    assert Registry(tmp_path).latest("temp") is None
    with pytest.raises(ArtifactNotFound, match="no published version"):
        Registry(tmp_path).load("temp")
    with pytest.raises(ArtifactNotFound, match="v0099"):
        Registry(registry).promote("temp", "v0099")


def test_same_data_and_seed_give_the_same_model(tmp_path: Path) -> None:
    v1 = train_tiny_artifact(tmp_path, name="a")
    v2 = train_tiny_artifact(tmp_path, name="b")
    reg = Registry(tmp_path)
    X = np.random.default_rng(1).normal(70, 3, size=(5, len(reg.load("a", v1).spec.names())))
    np.testing.assert_array_equal(
        reg.load("a", v1).forecaster.predict(X), reg.load("b", v2).forecaster.predict(X)
    )


def test_corrupt_model_is_refused(tmp_path: Path) -> None:
    version = train_tiny_artifact(tmp_path)
    (tmp_path / "temp" / version / "model.keras").write_bytes(b"not a model")
    (tmp_path / "temp" / version / "dense.npz").unlink()  # read through Keras
    with pytest.raises(IncompatibleArtifact, match="cannot load"):
        Registry(tmp_path).load("temp")


def test_foreign_feature_spec_is_refused(tmp_path: Path) -> None:
    version = train_tiny_artifact(tmp_path)
    manifest_path = tmp_path / "temp" / version / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["spec"]["names"] = ["something", "else"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IncompatibleArtifact, match="names"):
        Registry(tmp_path).load("temp")


def test_compatible_with_names_what_needs_a_restart(tmp_path: Path) -> None:
    train_tiny_artifact(tmp_path, name="a")
    train_tiny_artifact(tmp_path, name="b", window="5s", horizon="10s")
    reg = Registry(tmp_path)
    a, b = reg.load("a", with_model=False), reg.load("b", with_model=False)
    assert a.compatible_with(a) is None
    assert "window" in (a.compatible_with(b) or "")


def test_single_row_predict_is_fast(registry: Path) -> None:
    forecaster = Registry(registry).load("temp").forecaster
    x = np.zeros((1, forecaster.n_features), dtype=np.float32)
    forecaster.predict(x)
    started = time.perf_counter()
    for _ in range(200):
        forecaster.predict(x)
    assert (time.perf_counter() - started) / 200 < 0.5e-3


def test_fast_path_matches_keras(registry: Path) -> None:
    artifact = Registry(registry).load("temp")
    forecaster = artifact.forecaster
    assert forecaster is not None and forecaster.mode == "numpy"
    scaled = np.random.default_rng(0).normal(size=(32, forecaster.n_features)).astype(np.float32)
    X = scaled * forecaster.scale + forecaster.mean  # raw feature rows
    last = X[:, forecaster.last_index].astype(np.float64)
    ours = (forecaster.predict(X) - last) / float(forecaster.target_scale)
    import keras

    model = keras.models.load_model(artifact.path / "model.keras")
    keras_out = np.asarray(model(scaled, training=False))[:, 0]
    np.testing.assert_allclose(ours, keras_out, rtol=1e-4, atol=1e-5)


def test_batch_replay_equals_row_by_row_stream(registry: Path) -> None:
    artifact = Registry(registry).load("temp")
    points = tiny_points(devices=2, minutes=5, seed=3)
    view = run(points, artifact)
    from models import add_reading, close_window, new_state, step_alerts

    states: dict = {}
    forecasts = []
    for device, ts, value in points:
        state = states.get(device) or new_state(device)
        state, closed, _ = add_reading(state, ts, value, artifact.spec)
        for w in closed:
            state, row = close_window(state, w, artifact.spec)
            f = None if row is None else float(artifact.forecaster.predict(row.vector[None])[0])
            if f is not None:
                forecasts.append((device, w.end, f))
            state, _ = step_alerts(
                state, w, f, artifact.spec, artifact.alert_params, artifact.version
            )
        states[device] = state
    batch = sorted((p.device_id, p.window_end, p.forecast) for p in view.predictions)
    assert [b[:2] for b in batch] == [f[:2] for f in sorted(forecasts)]
    np.testing.assert_allclose([b[2] for b in batch], [f[2] for f in sorted(forecasts)], 1e-5)


def test_models_cli_lists_and_promotes(registry: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(models_group, ["list", "--model-registry", str(registry), "--json"])
    assert out.exit_code == 0, out.output
    assert [r["version"] for r in json.loads(out.output)] == ["v0001", "v0002"]
    out = runner.invoke(
        models_group,
        ["promote", "--model-registry", str(registry), "--model-name", "temp", "v0001"],
    )
    assert out.exit_code == 0 and "v0002 -> v0001" in out.output
    runner.invoke(
        models_group,
        ["promote", "--model-registry", str(registry), "--model-name", "temp", "v0002"],
    )


@pytest.mark.slow
def test_nab_train_60_percent_then_evaluate_the_rest(
    tmp_path: Path, nab_csv: Path, nab_labels: tuple[Path, Path]
) -> None:
    from models.cli import train

    runner = CliRunner()
    out = runner.invoke(
        train,
        [
            "--input",
            str(nab_csv),
            "--train-fraction",
            "0.6",
            "--model-registry",
            str(tmp_path),
            "--model-name",
            "nab",
            "--epochs",
            "200",
        ],
    )
    assert out.exit_code == 0, out.output
    windows, label_times = nab_labels
    out = runner.invoke(
        evaluate,
        [
            "--model-registry",
            str(tmp_path),
            "--model-name",
            "nab",
            "--input",
            str(nab_csv),
            "--from",
            "train-end",
            "--windows",
            str(windows),
            "--label-times",
            str(label_times),
            "--json",
            "--plot",
            str(tmp_path / "nab.png"),
        ],
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["mae"] < report["persistence_mae"]
    baselines = report["baselines"]
    assert baselines["model"] == report["mae"] and baselines["n"] == report["n"]
    assert baselines["model"] < baselines["ridge"] and baselines["seasonal_naive"] is not None
    assert [d["detected"] for d in report["labelled_windows"]] == [True, True]
    assert all(d["lead_time_h"] > 0 for d in report["labelled_windows"])
    assert report["false_alerts_per_week"] <= 1.0
    assert (tmp_path / "nab.png").stat().st_size > 10_000
