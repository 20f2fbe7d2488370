"""``iotml train``: fit a forecaster on recorded readings and publish a registry version."""

from __future__ import annotations

import json
from typing import Any

import click

from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options
from models.registry import Registry
from models.settings import TrainSettings


@click.command()
@settings_options(TrainSettings)
def train(**kwargs: Any) -> None:
    """Train a forecaster on recorded readings and publish it as a new registry version.

    Windows the readings with the shared feature code, fits a StandardScaler and a small
    Keras network on the earlier part (early stopping on the later --val-fraction), learns
    the alert thresholds from the validation part, and writes
    <registry>/<name>/<version>/ atomically (LATEST moves to it unless --no-promote).
    """
    s = build_settings(TrainSettings, kwargs)
    setup_logging(s.log_level)
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
    from models.thresholds import AlertRule
    from models.training import TrainConfig
    from models.training import train as run_training

    try:
        FeatureSpec(s.metric, s.window, s.k, s.horizon)  # bad flags fail before any loading
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
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
