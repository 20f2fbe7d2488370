"""``iotml train``: fit a forecaster on recorded readings and publish a registry version."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options
from models.registry import Registry
from models.settings import TrainSettings

if TYPE_CHECKING:
    from models.features import FeatureSpec
    from models.training import TrainConfig, TrainResult


@click.command()
@settings_options(TrainSettings)
def train(**kwargs: Any) -> None:
    """Train a forecaster on recorded readings and publish it as a new registry version.

    Windows the readings with the shared feature code, fits a StandardScaler and a small
    Keras network on the earlier part (early stopping on the later --val-fraction), learns
    the alert thresholds from the validation part, and writes
    <registry>/<name>/<version>/ atomically (LATEST moves to it unless --no-promote).
    With --baseline persistence it publishes the statistical baseline instead (no input
    needed): a cold start forecasts and alerts with it until `iotml retrain` trains one.
    """
    s = build_settings(TrainSettings, kwargs)
    setup_logging(s.log_level)
    if s.baseline is not None:
        _publish_baseline(s)
        return
    if not s.input:
        raise click.UsageError("--input (or IOTML_INPUT) is required")
    if s.if_missing:
        existing = Registry(s.model_registry).latest(s.model_name)
        if existing is not None:
            click.echo(f"{s.model_name} {existing} already in {s.model_registry}; nothing to do")
            return
    from models.features import FeatureSpec
    from models.sizing import choose_min_count
    from models.sources import load_points

    try:
        FeatureSpec(s.metric, s.window, s.k, s.horizon)  # bad flags fail before any loading
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if s.engine == "dask":
        result = _train_on_dask(s)
    else:
        from models.training import train as run_training

        points = load_points(s.input, s.metric, s.device, s.kafka_config())
        if s.train_fraction < 1.0:
            t0, t1 = min(p[1] for p in points), max(p[1] for p in points)
            cut = t0 + int(s.train_fraction * (t1 - t0))
            points = [p for p in points if p[1] < cut]
        click.echo(f"{len(points)} readings of {s.metric} from {s.input}", err=True)
        min_count = s.min_count
        if min_count is None:
            min_count = choose_min_count(points, s.window)
            click.echo(f"min_count {min_count} (from the data's readings per window)", err=True)
        spec = FeatureSpec(s.metric, s.window, s.k, s.horizon, min_count)
        result = run_training(
            points,
            _config(s, spec),
            Registry(s.model_registry),
            s.model_name,
            s.input,
            progress=_progress,
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


def _publish_baseline(s: TrainSettings) -> None:
    """Publish the persistence baseline with the command's feature settings."""
    from models.features import FeatureSpec
    from models.statistical import baseline_params, publish_persistence

    registry = Registry(s.model_registry)
    if s.if_missing and (existing := registry.latest(s.model_name)) is not None:
        click.echo(f"{s.model_name} {existing} already in {s.model_registry}; nothing to do")
        return
    try:
        # no data to choose min_count from: a single reading makes a usable window
        spec = FeatureSpec(s.metric, s.window, s.k, s.horizon, s.min_count or 1)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    overrides = {
        "overheat_threshold": s.overheat_threshold,
        "residual_threshold": s.residual_threshold,
        "low_limit": s.low_limit,
        "high_limit": s.high_limit,
    }
    params = baseline_params(spec, s.cooldown_windows, s.silence, overrides)
    version = publish_persistence(registry, s.model_name, spec, params, s.grace, promote=s.promote)
    click.echo(f"alert parameters: {json.dumps(params.to_dict())}", err=True)
    click.echo(f"published {s.model_name} {version} (persistence) in {s.model_registry}", err=True)
    click.echo(version)


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _config(s: TrainSettings, spec: FeatureSpec) -> TrainConfig:
    from models.thresholds import AlertRule
    from models.training import TrainConfig

    return TrainConfig(
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


def _train_on_dask(s: TrainSettings) -> TrainResult:
    """Windows and features on a Dask cluster, one task per Kafka partition of the
    archive; the fit here, on a bounded sample of the feature rows."""
    import time

    from models.cli._dask import cluster, require_archive
    from models.distributed import TrainJob, plan, run_dask_training
    from models.features import FeatureSpec

    require_archive(s.input)
    started = time.monotonic()
    spec = FeatureSpec(s.metric, s.window, s.k, s.horizon, s.min_count or 1)
    job = TrainJob(s.input, spec, s.grace, device=s.device, rows=s.sample_rows)
    with cluster(s, _progress) as client:
        job = plan(job, client, s.min_count, s.train_fraction)
        if s.min_count is None:
            _progress(f"min_count {job.spec.min_count} (from the data's readings per window)")
        data = run_dask_training(job, client, _progress)
    _progress(
        f"{data.readings} readings of {s.metric} from {s.input}: {data.examples} examples, "
        f"fitting on {len(data.X)}"
    )
    from models.training import fit

    extra = {"engine": "dask", "sampled_values": len(data.values)}
    return fit(
        data,
        _config(s, job.spec),
        Registry(s.model_registry),
        s.model_name,
        s.input,
        _progress,
        s.promote,
        started,
        extra,
    )
