"""``iotml batch`` (the batch view of recorded readings) and ``iotml archive``."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import click

from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options
from models.registry import Registry
from models.settings import ArchiveSettings, BatchSettings


@click.command()
@settings_options(BatchSettings)
def batch(**kwargs: Any) -> None:
    """Recompute features, forecasts and alerts for recorded readings (batch view).

    Reads every partition of the readings topic (or the Parquet archive), runs the same
    windowing, model and alert code as the processor, partition by partition with its
    partition clock (quiet devices, device_silent, the device time-to-live: give the
    processor's clock settings to reproduce its run), and writes predictions.parquet,
    alerts.parquet and summary.json to --output (and, with --publish, the Kafka topics).
    """
    s = build_settings(BatchSettings, kwargs)
    setup_logging(s.log_level)
    from models.batch import publish_view, write_view
    from models.clock import rules_for
    from models.evaluation import parse_time
    from models.replay import run_clocked
    from models.sources import load_points, load_records

    reg = Registry(s.model_registry)
    now = time.time_ns() // 1_000_000  # one "now" for relative --start and --end
    start = parse_time(s.start, now) if s.start else None
    end = parse_time(s.end, now) if s.end else None
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
    records = load_records(s.input, artifact.spec.metric, s.kafka_config(), start, end)
    grace = s.grace if s.grace is not None else artifact.grace_ms
    if s.silence_timeout is not None:
        params = artifact.alert_params.with_overrides(silence_ms=s.silence_timeout)
        artifact = dataclasses.replace(artifact, alert_params=params)
    rules = rules_for(
        artifact.spec, grace, s.idle_timeout, artifact.alert_params.silence_ms, s.device_ttl
    )
    view = run_clocked(records, artifact, grace, rules, s.flush)
    summary = {
        "model": f"{artifact.name}/{artifact.version}",
        "input": s.input,
        "readings": len(records),
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
    setup_logging(s.log_level)
    from models.archive import run_archive

    stats = run_archive(s)
    click.echo(json.dumps(stats, sort_keys=True))
