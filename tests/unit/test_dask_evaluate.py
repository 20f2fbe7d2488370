"""``iotml evaluate --engine dask`` reports what ``--engine local`` reports on the same
archive: the same counts, alerts and label scores, the same errors (float tolerance) of
the model and of its baselines, the ridge's among them fitted on the same rows below the
sample's cap."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import models.distributed
from models.cli import evaluate
from models.distributed import EvalJob, dask_client, run_dask_evaluation
from models.evaluation import parse_time
from models.registry import Registry
from models.sources import load_points
from tests.dask_fixtures import MIDNIGHT, archive_rows, write_archive
from tests.model_fixtures import train_tiny_artifact


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(registry, archive, labels): a model trained on the archive's first half."""
    base = tmp_path_factory.mktemp("dask-evaluate")
    archive = write_archive(base / "archive", archive_rows())
    points = load_points(str(archive), "temperature")
    first, last = min(p[1] for p in points), max(p[1] for p in points)
    half = [p for p in points if p[1] < (first + last) // 2]
    registry = base / "registry"
    train_tiny_artifact(
        registry, points=half, residual_threshold=0.3, overheat_threshold=45.0, deviation=True
    )
    _write_dense(registry)
    labels = base / "labels.json"
    labels.write_text(json.dumps({"archive": [["2023-11-15 00:01:00", "2023-11-15 00:03:00"]]}))
    return registry, archive, labels


def _write_dense(registry: Path) -> None:
    """Give the version its TensorFlow-free form when training left it out: six minutes
    of readings leave a time-of-day feature with a tiny scale, on which training's
    float32 probe of NumPy against Keras fails. Both engines then forecast in NumPy."""
    from models.forecaster import DENSE_FILE, _dense_layers

    artifact = Registry(registry).load("temp")
    if (artifact.path / DENSE_FILE).exists():
        return
    assert artifact.forecaster is not None
    layers = _dense_layers(artifact.forecaster.model)
    assert layers is not None, "the tiny network is dense"
    arrays: dict[str, Any] = {}
    for i, (kernel, bias, act) in enumerate(layers):
        arrays[f"kernel_{i}"], arrays[f"bias_{i}"] = kernel, bias
        arrays[f"activation_{i}"] = np.asarray(act)
    np.savez(artifact.path / DENSE_FILE, **arrays)


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's LocalCluster with its two workers as threads of this process (fast)."""
    monkeypatch.setattr(
        models.distributed, "dask_client", functools.partial(dask_client, processes=False)
    )


def _evaluate(registry: Path, archive: Path, engine: str, *more: str) -> Any:
    args = [
        *("--input", str(archive), "--model-registry", str(registry), "--model-name", "temp"),
        *("--engine", engine, *more),
    ]
    result = CliRunner().invoke(evaluate, args)
    assert result.exit_code == 0, result.output
    return result


def _report(registry: Path, archive: Path, engine: str, *more: str) -> dict[str, Any]:
    return json.loads(_evaluate(registry, archive, engine, "--json", *more).stdout)


def assert_same_report(want: dict[str, Any], got: dict[str, Any]) -> None:
    """Equal, but for float rounding in the sums (an error's last digit may differ)."""
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=2e-6), key
        elif isinstance(value, dict):
            assert_same_report(value, got[key])
        else:
            assert got[key] == value, key


@pytest.mark.slow
def test_dask_reports_what_local_reports_from_train_end_with_labels(setup, threads):
    registry, archive, labels = setup
    more = ("--from", "train-end", "--windows", str(labels), "--labels-key", "archive")
    local = _report(registry, archive, "local", *more)
    dask = _report(registry, archive, "dask", "--dask-workers", "2", *more)
    assert_same_report(local, dask)
    assert local["n"] > 100 and local["alerts"], "the fixture scores forecasts and alerts"
    assert local["labelled_windows"] and local["false_alerts"] > 0
    b = local["baselines"]
    assert b["ridge"] is not None and b["ridge_examples"] > 100  # fitted on every row
    assert b["seasonal_naive"] is None  # a 12-minute archive has no day before


@pytest.mark.slow
def test_dask_prints_the_local_text_and_takes_device(setup, threads):
    registry, archive, _ = setup
    more = ("--device", "dev-0002", "--from", "2023-11-15 00:00:00")
    local = _evaluate(registry, archive, "local", *more)
    dask = _evaluate(registry, archive, "dask", *more)
    assert dask.stdout == local.stdout
    assert "Dask dashboard: http" in dask.stderr
    report = _report(registry, archive, "dask", *more)
    assert {a["device_id"] for a in report["alerts"]} <= {"dev-0002"}
    assert parse_time(report["from"]) == MIDNIGHT


@pytest.mark.slow
def test_over_the_sample_cap_the_ridge_is_fitted_on_a_sample_and_says_so(setup, threads):
    registry, archive, _ = setup
    local = _report(registry, archive, "local", "--from", "train-end")
    dask = _report(registry, archive, "dask", "--from", "train-end", "--sample-rows", "50")
    b = dask["baselines"]
    assert b["ridge_examples"] == 50 and b["ridge"] is not None
    assert b["ridge_sampled_from"] == local["baselines"]["ridge_examples"]
    assert dask["mae"] == pytest.approx(local["mae"], abs=2e-6)  # only the ridge changes
    text = _evaluate(registry, archive, "dask", "--from", "train-end", "--sample-rows", "50")
    assert f"50 training examples, a sample of {b['ridge_sampled_from']})" in text.stdout


@pytest.mark.slow
def test_workers_in_their_own_processes_score_without_tensorflow(setup):
    registry, archive, _ = setup
    local = _report(registry, archive, "local", "--from", "train-end")
    artifact = Registry(registry).load("temp", with_model=False)
    job = EvalJob(
        archive=str(archive),
        registry=str(registry),
        model_name="temp",
        model_version=artifact.version,
        grace_ms=artifact.grace_ms,
        from_ms=int(artifact.manifest["training"]["last_ts"]) + 1,
    )
    with dask_client(None, workers=2, memory_limit="1GiB") as client:
        report = run_dask_evaluation(job, artifact, client)
        loaded = client.run(lambda: "tensorflow" in sys.modules)
    assert len(loaded) == 2 and not any(loaded.values())
    assert_same_report(local, json.loads(json.dumps(report)))


def test_dask_refuses_a_plot_and_a_topic(setup, tmp_path: Path):
    registry, archive, _ = setup
    base = ["--model-registry", str(registry), "--model-name", "temp", "--engine", "dask"]
    plot = [*base, "--input", str(archive), "--plot", str(tmp_path / "p.png")]
    result = CliRunner().invoke(evaluate, plot)
    assert result.exit_code != 0 and "--plot needs every point in one process" in result.output
    result = CliRunner().invoke(evaluate, [*base, "--input", "kafka://readings"])
    assert result.exit_code != 0 and "Parquet archive only" in result.output
