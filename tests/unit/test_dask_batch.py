"""``iotml batch --engine dask`` gives the local engine's view of the same archive, and both
the stream processor's: the same windows, forecasts and alert ids, written by the workers
as date-partitioned Parquet."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import models.distributed
from models.batch import alerts_table, predictions_table
from models.cli import batch
from models.distributed import Job, dask_client, run_dask_batch
from models.registry import Artifact, Registry
from models.replay import iter_clocked, run_clocked
from models.sources import load_records
from processor.model import ActiveModel
from tests.dask_fixtures import QUIET, archive_rows, write_archive
from tests.model_fixtures import train_tiny_artifact
from tests.unit.test_batch_clock import stream

SILENCE = "30s"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(registry, archive, the local engine's output)."""
    base = tmp_path_factory.mktemp("dask")
    registry = base / "registry"
    train_tiny_artifact(registry, residual_threshold=0.3, overheat_threshold=45.0)
    archive = write_archive(base / "archive", archive_rows())
    local = base / "local"
    result = CliRunner().invoke(batch, _args(registry, archive, local, "local"))
    assert result.exit_code == 0, result.output
    return registry, archive, local


def _args(
    registry: Path, archive: Path, out: Path, engine: str, *more: str, flush: bool = True
) -> list[str]:
    return [
        *("--input", str(archive), "--model-registry", str(registry), "--model-name", "temp"),
        *("--output", str(out), "--engine", engine, "--silence-timeout", SILENCE),
        *(("--flush",) if flush else ()),
        *more,
    ]


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's LocalCluster with its two workers as threads of this process (fast)."""
    monkeypatch.setattr(
        models.distributed, "dask_client", functools.partial(dask_client, processes=False)
    )


def _predictions(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (r["device_id"], r["window_end"], r["features"], r["forecast"], tuple(r["tags"]))
        for r in rows
    )


def _alerts(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((r["alert_id"], r["event"], r["ts"], r["device_id"], r["type"]) for r in rows)


def assert_same_outputs(
    want_p: list[dict[str, Any]],
    got_p: list[dict[str, Any]],
    want_a: list[dict[str, Any]],
    got_a: list[dict[str, Any]],
) -> None:
    """The same windows (device, end, features, tags), forecasts within float tolerance
    and alert events (ids included), in any order."""
    want, got = _predictions(want_p), _predictions(got_p)
    assert [w[:3] for w in want] == [g[:3] for g in got] and len(want) > 100
    assert [w[4] for w in want] == [g[4] for g in got]
    assert all(abs(w[3] - g[3]) < 1e-6 for w, g in zip(want, got, strict=True))
    assert _alerts(got_a) == _alerts(want_a)
    assert {(a["device_id"], a["type"]) for a in want_a} >= {(QUIET, "device_silent")}


def assert_same_view(local: Path, dask: Path) -> None:
    want_p = pq.read_table(local / "predictions.parquet")
    got_p = pq.read_table(dask / "predictions", partitioning="hive").drop_columns(["date"])
    assert got_p.schema.names == want_p.schema.names  # the same columns as the local files
    assert_same_outputs(
        want_p.to_pylist(),
        got_p.to_pylist(),
        pq.read_table(local / "alerts.parquet").to_pylist(),
        pq.read_table(dask / "alerts", partitioning="hive").to_pylist(),
    )
    summary = json.loads((dask / "summary.json").read_text())
    assert summary == json.loads((local / "summary.json").read_text())


@pytest.mark.slow
def test_dask_engine_gives_the_local_engines_view(setup, tmp_path: Path, threads):
    registry, archive, local = setup
    out = tmp_path / "dask"
    result = CliRunner().invoke(batch, _args(registry, archive, out, "dask", "--dask-workers", "2"))
    assert result.exit_code == 0, result.output
    assert "Dask dashboard: http" in result.stderr
    assert_same_view(local, out)
    days = sorted(p.name for p in (out / "predictions").iterdir())
    assert days == ["date=2023-11-14", "date=2023-11-15"]
    assert {p.name for p in (out / "alerts").glob("date=*/*.parquet")} <= {
        f"part-{k}.parquet" for k in range(4)
    }


def _arrow_pool() -> tuple[str | None, str]:
    """The pool the worker started with (the C++ code's), and the default one now."""
    import os

    import pyarrow as pa

    return os.environ.get("ARROW_DEFAULT_MEMORY_POOL"), str(pa.default_memory_pool().backend_name)


def _profiling() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


@pytest.mark.slow
def test_workers_in_their_own_processes_give_the_same_view_without_tensorflow(
    setup, tmp_path: Path
):
    registry, archive, local = setup
    out = tmp_path / "dask"
    job = Job(
        archive=str(archive),
        registry=str(registry),
        model_name="temp",
        model_version="v0001",
        grace_ms=None,
        idle_ms=None,
        silence_ms=30_000,
        ttl_ms=7 * 86_400_000,
        output=str(out),
        flush=True,
        chunk=500,
    )
    with dask_client(None, workers=2, memory_limit="1GiB") as client:
        counts = run_dask_batch(job, client)
        loaded = client.run(lambda: "tensorflow" in sys.modules)
        pools = client.run(_arrow_pool)
        profiling = client.run(_profiling)
    assert len(loaded) == 2 and not any(loaded.values())
    # Arrow on the C heap, whose free pages each chunk returns, and no profiler
    # (models.distributed._memory)
    assert set(pools.values()) == {("system", "system")}
    assert set(profiling.values()) == {False}
    summary = {"model": "temp/v0001", "input": str(archive), **counts}
    (out / "summary.json").write_text(json.dumps(summary))
    assert_same_view(local, out)


@pytest.mark.slow
def test_dask_local_and_the_stream_give_the_same_windows_forecasts_and_alert_ids(
    setup, tmp_path: Path, threads
):
    """Without --flush (the stream never closes the windows still open at its end)."""
    registry, archive, _ = setup
    views = {}
    for engine in ("local", "dask"):
        out = tmp_path / engine
        result = CliRunner().invoke(batch, _args(registry, archive, out, engine, flush=False))
        assert result.exit_code == 0, result.output
        views[engine] = out
    assert_same_view(views["local"], views["dask"])

    artifact = Registry(registry).load("temp")
    params = artifact.alert_params.with_overrides(silence_ms=30_000)  # --silence-timeout
    active = ActiveModel(
        "temp", artifact.version, artifact.spec, params, artifact.forecaster, artifact
    )
    records = load_records(str(archive), artifact.spec.metric)
    preds, alerts = stream(records, active, ttl_ms=7 * 86_400_000)  # the processor's default
    assert_same_outputs(
        pq.read_table(views["local"] / "predictions.parquet").to_pylist(),
        predictions_table(preds).to_pylist(),
        pq.read_table(views["local"] / "alerts.parquet").to_pylist(),
        alerts_table(alerts).to_pylist(),
    )


def test_the_dask_engine_reads_the_archive_only(setup, tmp_path: Path):
    registry, _, _ = setup
    args = _args(registry, tmp_path, tmp_path / "out", "dask")
    args[1] = "kafka://readings"
    result = CliRunner().invoke(batch, args)
    assert result.exit_code != 0 and "Parquet archive only" in result.output


def test_the_incremental_replay_gives_run_clockeds_outputs_in_any_chunks():
    from tests.unit.test_batch_clock import PARAMS, SPEC, PlusOne, fleet, rules_for

    records = fleet()
    artifact = Artifact("m", "v1", Path("."), {}, SPEC, PARAMS, PlusOne())  # type: ignore[arg-type]
    rules = rules_for(SPEC, 0, None, PARAMS.silence_ms, 180_000)
    whole = run_clocked(records, artifact, 0, rules, flush=True)
    ordered = sorted(records, key=lambda r: r[0])  # each partition together, in order
    parts = list(iter_clocked(ordered, artifact, 0, rules, flush=True, chunk=37))
    assert len(parts) > 10
    assert [p for v in parts for p in v.predictions] == whole.predictions
    assert [a for v in parts for a in v.alerts] == whole.alerts
    assert sum(len(v.windows) for v in parts) == len(whole.windows)
    assert sum(v.late for v in parts) == whole.late


def test_the_incremental_replay_refuses_interleaved_partitions():
    from tests.unit.test_batch_clock import PARAMS, SPEC, PlusOne, fleet, rules_for

    artifact = Artifact("m", "v1", Path("."), {}, SPEC, PARAMS, PlusOne())  # type: ignore[arg-type]
    rules = rules_for(SPEC, 0, None, PARAMS.silence_ms, 180_000)
    with pytest.raises(ValueError, match="not together"):
        list(iter_clocked(fleet(), artifact, 0, rules))
