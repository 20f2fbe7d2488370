"""``iotml train | evaluate | models | batch | archive``.

TensorFlow is imported only inside the commands that run a model.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from iotml.core.durations import parse_duration_ms
from iotml.core.options import build_settings, settings_options
from iotml.core.settings import KafkaSettings
from models.errors import DataError
from models.settings import ArchiveSettings, BatchSettings, TrainSettings

log = logging.getLogger(__name__)


def _quiet_tf() -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _alias(kwargs: dict[str, Any]) -> dict[str, Any]:
    out, name = kwargs.pop("out_alias", None), kwargs.pop("name_alias", None)
    if out is not None:
        kwargs["model_registry"] = out
    if name is not None:
        kwargs["model_name"] = name
    return kwargs


def _aliases(func: Any) -> Any:
    func = click.option("--out", "out_alias", default=None, help="Alias of --model-registry.")(func)
    return click.option("--name", "name_alias", default=None, help="Alias of --model-name.")(func)


@click.command()
@_aliases
@settings_options(TrainSettings)
def train(**kwargs: Any) -> None:
    """Train a forecaster on recorded readings and publish it as a new registry version.

    Windows the readings with the shared feature code, fits a StandardScaler and a small
    Keras network on the earlier part (early stopping on the later --val-fraction), learns
    the alert thresholds from the validation part, and writes
    <registry>/<name>/<version>/ atomically (LATEST moves to it unless --no-promote).
    """
    s = build_settings(TrainSettings, _alias(kwargs))
    if not s.input:
        raise click.UsageError("--input (or IOTML_INPUT) is required")
    if s.if_missing:
        from models.registry import Registry as _Registry

        existing = _Registry(s.model_registry).latest(s.model_name)
        if existing is not None:
            click.echo(f"{s.model_name} {existing} already in {s.model_registry}; nothing to do")
            return
    _quiet_tf()
    from models.features import FeatureSpec
    from models.registry import Registry
    from models.sources import load_points
    from models.thresholds import AlertRule
    from models.training import TrainConfig
    from models.training import train as run_training

    try:
        spec = FeatureSpec(s.metric, s.window, s.k, s.horizon, s.min_count)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    points = load_points(s.input, s.metric, s.device, s.kafka_config())
    if s.train_fraction < 1.0:
        t0, t1 = min(p[1] for p in points), max(p[1] for p in points)
        cut = t0 + int(s.train_fraction * (t1 - t0))
        points = [p for p in points if p[1] < cut]
    click.echo(f"{len(points)} readings of {s.metric} from {s.input}", err=True)
    config = TrainConfig(
        spec=spec,
        epochs=s.epochs,
        batch_size=s.batch_size,
        patience=s.patience,
        learning_rate=s.learning_rate,
        hidden=tuple(int(h) for h in s.hidden),
        val_fraction=s.val_fraction,
        seed=s.seed,
        grace_ms=s.grace,
        threads=s.threads,
        rule=AlertRule(
            residual_z=s.residual_z,
            min_duration_windows=s.min_duration_windows,
            cooldown_windows=s.cooldown_windows,
            silence_ms=s.silence,
        ),
        overrides={
            "overheat_threshold": s.overheat_threshold,
            "residual_threshold": s.residual_threshold,
            "low_limit": s.low_limit,
            "high_limit": s.high_limit,
        },
    )
    result = run_training(
        points,
        config,
        Registry(s.model_registry),
        s.model_name,
        s.input,
        progress=lambda line: click.echo(line, err=True),
        promote=s.promote,
    )
    click.echo(
        f"validation: mae {result.metrics['val_mae']:.4f} "
        f"(persistence {result.metrics['val_persistence_mae']:.4f}, "
        f"n={result.metrics['val_n']}); {result.epochs_run} epochs in {result.seconds:.1f}s",
        err=True,
    )
    click.echo(f"alert parameters: {json.dumps(result.alert_params.to_dict())}", err=True)
    click.echo(f"published {s.model_name} {result.version} in {s.model_registry}", err=True)
    click.echo(result.version)


@click.command()
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A model version directory (<registry>/<name>/<version>) or a model directory "
    "(<registry>/<name>: its LATEST version).",
)
@click.option(
    "--input",
    "source",
    required=True,
    help="Readings: CSV file, Parquet archive directory or kafka://<topic> "
    "(Kafka settings from IOTML_KAFKA_* variables).",
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
@click.option("--grace", default="0s", help="Grace period of the windows (as the processor's).")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@click.option(
    "--plot", type=click.Path(path_type=Path), help="Write a PNG: actual vs forecast, alerts."
)
def evaluate(
    model_path: Path,
    source: str,
    device: str | None,
    from_: str | None,
    windows: Path | None,
    label_times: Path | None,
    labels_key: str | None,
    grace: str,
    as_json: bool,
    plot: Path | None,
) -> None:
    """Replay readings through the model's features, forecaster and alert rule, and score
    them: mae vs persistence_mae at the model's horizon, alerts, and with labels the
    detected windows, lead times and false alerts per week."""
    _quiet_tf()
    from models.evaluation import evaluate as run_eval
    from models.evaluation import load_labels, parse_time
    from models.registry import load_path
    from models.sources import load_points

    artifact = load_path(model_path)
    kafka = build_settings(KafkaSettings, {}) if source.startswith("kafka://") else None
    points = load_points(
        source, artifact.spec.metric, device, kafka.kafka_config() if kafka else None
    )
    labels = load_labels(windows, label_times, labels_key, source) if windows else []
    if from_ == "train-end":
        from_ms: int | None = int(artifact.manifest["training"]["last_ts"]) + 1
    else:
        from_ms = parse_time(from_) if from_ else None
    result = run_eval(points, artifact, labels, from_ms, parse_duration_ms(grace))
    if plot is not None:
        from models.plot import plot_evaluation

        plot_evaluation(result, labels, plot)
        result.report["plot"] = str(plot)
    if as_json:
        click.echo(json.dumps(result.report, sort_keys=True))
        return
    r = result.report
    click.echo(f"model {r['model']}  {r['from']} .. {r['to']}  n={r['n']}")
    click.echo(f"mae {r['mae']:.4f}   persistence_mae {r['persistence_mae']:.4f}")
    for a in r["alerts"]:
        value = "" if a["value"] is None else f"{a['value']:.3f}"
        click.echo(f"alert {a['time']} {a['type']:<20} value {value}")
    for d in r.get("labelled_windows", []):
        lead = f"lead {d['lead_time_h']} h" if d["detected"] else "MISSED"
        click.echo(f"label {d['label_time']}: {lead}")
    if labels:
        click.echo(f"false alerts: {r['false_alerts']} ({r['false_alerts_per_week']}/week)")


@click.group("models")
def models_group() -> None:
    """Inspect the model registry and roll versions forward or back."""


def _registry_option(func: Any) -> Any:
    return click.option(
        "--registry",
        envvar="IOTML_MODEL_REGISTRY",
        default="models-registry",
        show_default=True,
        type=click.Path(path_type=Path),
        help="Registry directory [env: IOTML_MODEL_REGISTRY].",
    )(func)


@models_group.command("list")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(registry: Path, as_json: bool) -> None:
    """Model names, their versions and which one LATEST points at."""
    from models.registry import Registry

    reg = Registry(registry)
    rows = []
    for name in reg.names():
        latest = reg.latest(name)
        for version in reg.versions(name):
            m = reg.manifest(name, version)
            rows.append(
                {
                    "name": name,
                    "version": version,
                    "latest": version == latest,
                    "created": m.get("created"),
                    "val_mae": (m.get("validation") or {}).get("val_mae"),
                    "source": (m.get("training") or {}).get("source"),
                }
            )
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo(f"no models in {registry}")
    for r in rows:
        mark = "*" if r["latest"] else " "
        mae = "" if r["val_mae"] is None else f"val_mae {r['val_mae']:.4f}"
        click.echo(f"{mark} {r['name']} {r['version']}  {r['created']}  {mae}  {r['source']}")


@models_group.command("show")
@_registry_option
@click.argument("name")
@click.argument("version", required=False)
def show_model(registry: Path, name: str, version: str | None) -> None:
    """Print a version's manifest (default: LATEST)."""
    from models.registry import Registry

    click.echo(json.dumps(Registry(registry).manifest(name, version), indent=2, sort_keys=True))


@models_group.command("promote")
@_registry_option
@click.argument("name")
@click.argument("version")
@click.option("--check/--no-check", default=True, help="Load the model before promoting it.")
def promote_model(registry: Path, name: str, version: str, check: bool) -> None:
    """Point NAME's LATEST at VERSION (roll forward or back); running processors follow."""
    from models.registry import Registry

    reg = Registry(registry)
    if check:
        _quiet_tf()
        reg.load(name, version)
    previous = reg.latest(name)
    reg.promote(name, version)
    click.echo(f"{name}: LATEST {previous} -> {version}")


@click.command()
@_aliases
@settings_options(BatchSettings)
def batch(**kwargs: Any) -> None:
    """Recompute features, forecasts and alerts for recorded readings (batch view).

    Reads every partition of the readings topic (or the Parquet archive), runs the same
    windowing, model and alert code as the processor, and writes predictions.parquet,
    alerts.parquet and summary.json to --output (and, with --publish, the Kafka topics).
    """
    s = build_settings(BatchSettings, _alias(kwargs))
    _quiet_tf()
    from models.batch import publish_view, write_view
    from models.evaluation import parse_time
    from models.registry import Registry
    from models.replay import run
    from models.sources import load_points

    reg = Registry(s.model_registry)
    start = parse_time(s.start) if s.start else None
    end = parse_time(s.end) if s.end else None
    if s.retrain:
        from models.training import TrainConfig
        from models.training import train as run_training

        current = reg.load(s.model_name, s.model_version, with_model=False)
        points = load_points(
            s.input, current.spec.metric, None, s.kafka_config(), start_ms=start, end_ms=end
        )
        result = run_training(
            points,
            TrainConfig(spec=current.spec),
            reg,
            s.model_name,
            s.input,
            progress=lambda line: click.echo(line, err=True),
        )
        click.echo(f"retrained: published {s.model_name} {result.version}", err=True)
        artifact = reg.load(s.model_name, result.version)
    else:
        artifact = reg.load(s.model_name, s.model_version)
        points = load_points(
            s.input, artifact.spec.metric, None, s.kafka_config(), start_ms=start, end_ms=end
        )
    view = run(points, artifact, s.grace, s.flush)
    summary = {
        "model": f"{artifact.name}/{artifact.version}",
        "input": s.input,
        "readings": len(points),
        "late_readings": view.late,
        "windows": len(view.windows),
        "predictions": len(view.predictions),
        "alerts": len(view.alerts),
    }
    write_view(view, s.output, summary)
    if s.publish:
        publish_view(view, s.kafka_config(), s.topic_predictions, s.topic_alerts)
    click.echo(json.dumps(summary, sort_keys=True))


@click.command()
@settings_options(ArchiveSettings)
def archive(**kwargs: Any) -> None:
    """Keep the raw readings as Parquet files partitioned by event date (date=YYYY-MM-DD/),
    rolled by rows, size or time; offsets are committed only after files are durable."""
    s = build_settings(ArchiveSettings, kwargs)
    logging.basicConfig(level=s.log_level, stream=sys.stderr)
    from models.archive import run_archive

    stats = run_archive(s)
    click.echo(json.dumps(stats, sort_keys=True))


__all__ = ["DataError", "archive", "batch", "evaluate", "models_group", "train"]
