"""``iotml evaluate``: replay readings through a model version and score it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options
from models.registry import Registry
from models.settings import EvaluateSettings

if TYPE_CHECKING:
    from models.evaluation import Label
    from models.registry import Artifact


@click.command()
@click.option(
    "--input",
    "source",
    required=True,
    help="Readings: CSV file, Parquet archive directory or kafka://<topic>.",
)
@click.option("--device", default=None, help="Only this device (CSV without device_id: its id).")
@click.option(
    "--from",
    "from_",
    default=None,
    help="Score only forecasts and alerts from this time on (ISO date-time UTC, epoch ms, "
    "or 'train-end': the end of the model's training data). Earlier readings still warm "
    "up the windows.",
)
@click.option(
    "--windows",
    type=click.Path(exists=True, path_type=Path),
    help="Labelled windows, NAB format: {key: [[start, end], ...]}.",
)
@click.option(
    "--label-times",
    type=click.Path(exists=True, path_type=Path),
    help="Label times, NAB format: {key: [time, ...]} (default: window centres).",
)
@click.option("--labels-key", default=None, help="Key in the label files (default: by file name).")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@click.option(
    "--plot", type=click.Path(path_type=Path), help="Write a PNG: actual vs forecast, alerts."
)
@settings_options(EvaluateSettings)
def evaluate(
    source: str,
    device: str | None,
    from_: str | None,
    windows: Path | None,
    label_times: Path | None,
    labels_key: str | None,
    as_json: bool,
    plot: Path | None,
    **kwargs: Any,
) -> None:
    """Replay readings through the model's features, forecaster and alert rule, and score
    them: mae vs persistence_mae at the model's horizon, the MAE of the baselines on the
    same windows (persistence, seasonal naive, ridge on the model's features and training
    data), alerts, and with labels the detected windows, lead times and false alerts per
    week. With --engine dask a Parquet archive is replayed and scored on a Dask cluster,
    one task per Kafka partition, with the same report."""
    s = build_settings(EvaluateSettings, kwargs)
    setup_logging(s.log_level)
    from models.evaluation import load_labels

    labels = load_labels(windows, label_times, labels_key, source) if windows else []
    if s.engine == "dask":
        report = _evaluate_on_dask(s, source, device, from_, labels, plot)
    else:
        report = _evaluate_locally(s, source, device, from_, labels, plot)
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
        return
    r = report
    click.echo(f"model {r['model']}  {r['from']} .. {r['to']}  n={r['n']}")
    click.echo(f"mae {r['mae']:.4f}   persistence_mae {r['persistence_mae']:.4f}")
    for line in baseline_lines(r["baselines"]):
        click.echo(line)
    for a in r["alerts"]:
        value = "" if a["value"] is None else f"{a['value']:.3f}"
        click.echo(f"alert {a['time']} {a['type']:<20} value {value}")
    for d in r.get("labelled_windows", []):
        lead = f"lead {d['lead_time_h']} h" if d["detected"] else "MISSED"
        click.echo(f"label {d['label_time']}: {lead}")
    if labels:
        click.echo(f"false alerts: {r['false_alerts']} ({r['false_alerts_per_week']}/week)")


def _from_ms(from_: str | None, artifact: Artifact) -> int | None:
    from models.evaluation import parse_time

    if from_ == "train-end":
        return int(artifact.manifest["training"]["last_ts"]) + 1
    return parse_time(from_) if from_ else None


def _evaluate_locally(
    s: EvaluateSettings,
    source: str,
    device: str | None,
    from_: str | None,
    labels: list[Label],
    plot: Path | None,
) -> dict[str, Any]:
    from models.baselines import compare
    from models.evaluation import evaluate as run_eval
    from models.sources import load_points

    artifact = Registry(s.model_registry).load(s.model_name, s.model_version)
    kafka = s.kafka_config() if source.startswith("kafka://") else None
    points = load_points(source, artifact.spec.metric, device, kafka)
    grace = s.grace if s.grace is not None else artifact.grace_ms
    result = run_eval(points, artifact, labels, _from_ms(from_, artifact), grace)
    result.report["baselines"] = compare(result, points, artifact, grace)
    if plot is not None:
        from models.plot import plot_evaluation

        plot_evaluation(result, labels, plot)
        result.report["plot"] = str(plot)
    return result.report


def _evaluate_on_dask(
    s: EvaluateSettings,
    source: str,
    device: str | None,
    from_: str | None,
    labels: list[Label],
    plot: Path | None,
) -> dict[str, Any]:
    """The archive's Kafka partitions replayed and scored on a Dask cluster; the same
    report as the local engine (the client loads no model: it never forecasts)."""
    import models.distributed as dist
    from models.cli._dask import cluster, require_archive

    if plot is not None:
        raise click.UsageError(
            "--plot needs every point in one process: use --engine local (e.g. with --device)"
        )
    require_archive(source)
    artifact = Registry(s.model_registry).load(s.model_name, s.model_version, with_model=False)
    job = dist.EvalJob(
        archive=source,
        registry=str(s.model_registry),
        model_name=s.model_name,
        model_version=artifact.version,
        grace_ms=s.grace if s.grace is not None else artifact.grace_ms,
        from_ms=_from_ms(from_, artifact),
        device=device,
        rows=s.sample_rows,
    )
    with cluster(s, _progress) as client:
        return dist.run_dask_evaluation(job, artifact, client, labels, _progress)


def _progress(line: str) -> None:
    click.echo(line, err=True)


def baseline_lines(b: dict[str, Any]) -> list[str]:
    """The baselines beside the model, one per line."""
    n = b["n"]
    if b["seasonal_naive"] is None:
        seasonal = "n/a (no window a day before the targets)"
    else:
        seasonal = f"{b['seasonal_naive']:.4f}"
        if b["seasonal_naive_n"] < n:
            seasonal += f" (on the {b['seasonal_naive_n']} windows with a day before them)"
    if b["ridge"] is None:
        ridge = f"n/a ({b['ridge_note']})"
    else:
        ridge = f"{b['ridge']:.4f} (the model's features, {b['ridge_examples']} training examples"
        if "ridge_sampled_from" in b:  # --engine dask over more rows than --sample-rows
            ridge += f", a sample of {b['ridge_sampled_from']}"
        ridge += ")"
    return [
        f"MAE on the same {n} windows:",
        f"  persistence     {b['persistence']:.4f}",
        f"  seasonal naive  {seasonal}",
        f"  ridge           {ridge}",
        f"  model           {b['model']:.4f}",
    ]
