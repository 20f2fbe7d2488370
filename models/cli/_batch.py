"""``iotml batch`` (the batch view of recorded readings) and ``iotml archive``."""

from __future__ import annotations

import json
import time
from collections import Counter
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
    alerts.parquet and summary.json to --output (and, with --publish, the Kafka topics),
    with its progress on stderr (a line redrawn every second on a terminal, a line every
    30 s elsewhere). With --engine dask the Parquet archive is replayed on a Dask cluster,
    one task per Kafka partition, each writing predictions/date=*/ and alerts/date=*/
    under --output.
    """
    s = build_settings(BatchSettings, kwargs)
    setup_logging(s.log_level)
    if s.engine == "dask":
        _batch_on_dask(s)
        return
    from models.batch import publish_view, replay_view, write_view
    from models.cli._progress import ReplayProgress
    from models.distributed import prepared
    from models.evaluation import parse_time
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
    loading = time.monotonic()
    records = load_records(s.input, artifact.spec.metric, s.kafka_config(), start, end)
    progress = ReplayProgress(Counter(record[0] for record in records))
    progress.note(
        f"read {len(records):,} readings from {s.input} in {time.monotonic() - loading:.1f}s"
    )
    artifact, grace, rules = prepared(
        artifact, s.grace, s.idle_timeout, s.silence_timeout, s.device_ttl
    )
    view = replay_view(records, artifact, grace, rules, s.flush, progress)
    progress.close()
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


def _batch_on_dask(s: BatchSettings) -> None:
    """``iotml batch --engine dask``: the archive's partitions as tasks on a cluster."""
    from models.batch import write_summary
    from models.cli._dask import cluster, require_archive
    from models.distributed import Job, run_dask_batch
    from models.evaluation import parse_time

    require_archive(s.input)
    if s.retrain:
        raise click.UsageError("--retrain runs with --engine local only (for now)")
    artifact = Registry(s.model_registry).load(s.model_name, s.model_version, with_model=False)
    now = time.time_ns() // 1_000_000
    job = Job(
        archive=s.input,
        registry=str(s.model_registry),
        model_name=artifact.name,
        model_version=artifact.version,
        grace_ms=s.grace,
        idle_ms=s.idle_timeout,
        silence_ms=s.silence_timeout,
        ttl_ms=s.device_ttl,
        output=str(s.output),
        start_ms=parse_time(s.start, now) if s.start else None,
        end_ms=parse_time(s.end, now) if s.end else None,
        flush=s.flush,
        kafka=s.kafka_config() if s.publish else None,
        topics=(s.topic_predictions, s.topic_alerts),
    )

    def progress(line: str) -> None:
        click.echo(line, err=True)

    with cluster(s, progress) as client:
        counts = run_dask_batch(job, client, progress)
    summary = {"model": f"{artifact.name}/{artifact.version}", "input": s.input, **counts}
    write_summary(s.output, summary)
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
