"""``iotml train --engine dask``: the windows, features, bands and values computed on the
cluster are local training's; the fit uses a bounded sample, the same for any split; the
artifact has the local one's format."""

from __future__ import annotations

import functools
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import models.distributed
from models.cli import train
from models.distributed import TrainJob, dask_client, plan, run_dask_training
from models.distributed._sample import BottomK, row_keys
from models.distributed._train import min_count_of
from models.features import FeatureSpec
from models.registry import Registry
from models.sizing import choose_min_count
from models.sources import load_points
from models.trainset import TrainingSet, from_points
from tests.dask_fixtures import archive_rows, write_archive

SPEC = FeatureSpec("temperature", window_ms=10_000, k=2, horizon_ms=20_000, min_count=3)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_archive(tmp_path_factory.mktemp("archive"), archive_rows())


@pytest.fixture(scope="module")
def local(archive: Path) -> TrainingSet:
    return from_points(load_points(str(archive), SPEC.metric), SPEC)


@pytest.fixture(scope="module")
def client() -> Any:
    with dask_client(None, workers=2, processes=False) as c:
        yield c


def _rows(data: TrainingSet) -> list[tuple[Any, ...]]:
    X = [tuple(r) for r in data.X.tolist()]
    return sorted(zip(data.ends.tolist(), data.y.tolist(), data.last.tolist(), X, strict=True))


def test_the_cluster_computes_local_trainings_examples_values_and_bands(archive, local, client):
    data = run_dask_training(TrainJob(str(archive), SPEC), client)
    assert _rows(data) == _rows(local) and len(local.X) > 400
    assert sorted(data.values) == sorted(local.values)
    assert data.bands is not None and data.bands == local.bands
    assert len(data.bands.devices) == 7  # the quiet device has too few windows for its own
    assert data.manifest() == local.manifest()
    assert data.manifest()["devices"] == 8  # a count, not a list


def test_a_capped_sample_is_the_bottom_of_all_and_every_device_keeps_its_band(
    archive, local, client
):
    job = TrainJob(str(archive), SPEC, rows=100, values=500, band_devices=3)
    data = run_dask_training(job, client)
    assert len(data.X) == 100 and data.examples == len(local.X)
    assert len(data.values) == 500 and data.readings == local.readings
    whole = BottomK(100)  # the sample of one task holding everything: the same rows
    whole.add(row_keys(local.X, local.y, local.ends), ends=local.ends, y=local.y)
    assert sorted(data.ends.tolist()) == sorted(whole.column("ends", np.empty(0)).tolist())
    assert set(_rows(data)) <= set(_rows(local))
    assert data.bands is not None and local.bands is not None
    assert data.bands.devices.keys() == local.bands.devices.keys()


def test_bottom_k_is_the_same_for_any_split_and_order():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, 1000, dtype=np.int64).astype(np.uint64)
    whole = BottomK(50)
    whole.add(keys, v=np.arange(1000))
    merged = BottomK(50)
    for part in (slice(600, 1000), slice(0, 250), slice(250, 600)):
        one = BottomK(50)
        one.add(keys[part], v=np.arange(1000)[part])
        one.trim()
        merged.merge(one)
    assert merged.seen == 1000
    want = whole.column("v", np.empty(0))
    assert merged.column("v", np.empty(0)).tolist() == want.tolist()
    assert sorted(want.tolist()) == sorted(np.argsort(keys)[:50].tolist())


@pytest.mark.parametrize("counts", [[1], [1, 1, 2, 5], [4, 4, 4, 10, 10, 10], [7] * 5 + [1] * 4])
def test_min_count_from_a_histogram_is_choose_min_counts(counts):
    want = max(1, min(3, math.ceil(statistics.median(counts) / 2)))
    histogram = {c: counts.count(c) for c in set(counts)}
    assert min_count_of(histogram) == want


def test_the_plan_chooses_min_count_and_the_training_period_as_local_training(archive, client):
    points = load_points(str(archive), SPEC.metric)
    t0, t1 = min(p[1] for p in points), max(p[1] for p in points)
    cut = t0 + int(0.5 * (t1 - t0))
    job = plan(TrainJob(str(archive), SPEC), client, None, 0.5)
    assert job.end_ms == cut
    assert job.spec.min_count == choose_min_count([p for p in points if p[1] < cut], 10_000)
    assert plan(TrainJob(str(archive), SPEC), client, 2, 1.0).spec.min_count == 2


def _train(archive: Path, registry: Path, name: str, *more: str) -> Any:
    args = [
        *("--input", str(archive), "--model-registry", str(registry), "--model-name", name),
        *("--window", "10s", "--horizon", "20s", "--k", "2", "--epochs", "3", "--hidden", "8"),
        *more,
    ]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output
    return Registry(registry).load(name)


@pytest.mark.slow
def test_train_on_dask_publishes_what_local_training_publishes(archive, tmp_path, monkeypatch):
    monkeypatch.setattr(
        models.distributed, "dask_client", functools.partial(dask_client, processes=False)
    )
    registry = tmp_path / "registry"
    local = _train(archive, registry, "local")
    dask = _train(archive, registry, "dask", "--engine", "dask", "--dask-workers", "2")
    assert dask.spec == local.spec and dask.spec.min_count == 3  # chosen from the data
    files = {p.name for p in dask.path.iterdir()}
    assert files == {p.name for p in local.path.iterdir()} >= {"bands.json", "model.keras"}
    want, got = local.manifest["training"], dask.manifest["training"]
    for key in ("readings", "devices", "first_ts", "last_ts", "examples", "validation_from_ts"):
        assert got[key] == want[key], key
    assert got["devices"] == 8 and got["engine"] == "dask"
    assert got["sampled_examples"] == want["examples"]
    bands = json.loads((dask.path / "bands.json").read_text())
    assert bands == json.loads((local.path / "bands.json").read_text())
    for limit in ("low_limit", "high_limit", "deviation_z"):  # from the values and the bands
        assert getattr(dask.alert_params, limit) == getattr(local.alert_params, limit)
    rows = from_points(load_points(str(archive), SPEC.metric), dask.spec).X[:5]
    for artifact in (local, dask):  # both load, with their model, and forecast
        assert artifact.forecaster is not None
        assert np.all(np.isfinite(artifact.forecaster.predict(rows)))


@pytest.mark.slow
def test_training_workers_never_import_tensorflow(archive, local):
    with dask_client(None, workers=2, memory_limit="1GiB") as client:
        data = run_dask_training(TrainJob(str(archive), SPEC), client)
        loaded = client.run(lambda: "tensorflow" in sys.modules)
    assert len(loaded) == 2 and not any(loaded.values())
    assert _rows(data) == _rows(local)


def test_train_on_dask_reads_the_archive_only(tmp_path: Path):
    args = ["--input", "kafka://readings", "--engine", "dask"]
    result = CliRunner().invoke(train, [*args, "--model-registry", str(tmp_path)])
    assert result.exit_code != 0 and "Parquet archive only" in result.output
