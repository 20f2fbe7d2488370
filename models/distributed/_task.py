"""What one Dask task does: replay one Kafka partition of the archive and write its outputs.

Runs in a worker: it loads the model version itself (the TensorFlow-free NumPy form,
``dense.npz``), streams the partition's readings (:mod:`._archive`) through
:func:`models.replay.iter_clocked`, and writes each chunk's predictions and alerts at once
to ``<output>/{predictions,alerts}/date=YYYY-MM-DD/part-<partition>.parquet`` (and to
Kafka with ``publish``). Only counts go back to the client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from iotml.core.records import Alert, Prediction
from models.archive import date_of
from models.batch import Publisher, alerts_table, predictions_table
from models.clock import ClockRules, rules_for
from models.distributed._memory import release_free_memory, use_system_pool
from models.distributed._model import load_for_worker
from models.registry import Artifact
from models.replay import Record, iter_clocked

T = TypeVar("T")
PREDICTIONS = "predictions"
ALERTS = "alerts"


@dataclass(frozen=True)
class Job:
    """Everything a task needs (picklable: it travels to the workers)."""

    archive: str
    registry: str
    model_name: str
    model_version: str  # resolved on the client: every task runs the same version
    grace_ms: int | None  # None: the model's
    idle_ms: int | None
    silence_ms: int | None  # None: the model's alert parameters
    ttl_ms: int
    output: str
    start_ms: int | None = None
    end_ms: int | None = None
    flush: bool = False
    kafka: dict[str, Any] | None = None  # set: publish to these topics
    topics: tuple[str, str] = (PREDICTIONS, ALERTS)
    chunk: int = 10_000  # readings per chunk of outputs


def prepared(
    artifact: Artifact,
    grace_ms: int | None,
    idle_ms: int | None,
    silence_ms: int | None,
    ttl_ms: int,
) -> tuple[Artifact, int, ClockRules]:
    """The artifact with the silence override, the grace period and the clock's rules, as
    ``iotml batch`` runs them on either engine."""
    grace = grace_ms if grace_ms is not None else artifact.grace_ms
    if silence_ms is not None:
        params = artifact.alert_params.with_overrides(silence_ms=silence_ms)
        artifact = dataclasses.replace(artifact, alert_params=params)
    rules = rules_for(artifact.spec, grace, idle_ms, artifact.alert_params.silence_ms, ttl_ms)
    return artifact, grace, rules


class _DatedParquet:
    """Parquet files per date, written as rows come (``part-<partition>.parquet``, under a
    temporary name until closed). Only the two newest dates stay open: a replay moves
    forward in time, and an open writer holds its buffers and the metadata of every row
    group it wrote, so a long archive would otherwise cost memory per day replayed. A row
    for a date already closed (a quiet device's late window) goes to a further file of
    that date (``part-<partition>-<n>.parquet``)."""

    def __init__(self, root: Path, partition: int, schema: pa.Schema) -> None:
        self._root, self._partition, self._schema = root, partition, schema
        self._writers: dict[str, tuple[pq.ParquetWriter, Path]] = {}
        self._files: dict[str, int] = {}  # files opened per date so far

    def write(self, day: str, table: pa.Table) -> None:
        if day not in self._writers:
            n = self._files.get(day, 0)
            self._files[day] = n + 1
            directory = self._root / f"date={day}"
            directory.mkdir(parents=True, exist_ok=True)
            name = f"part-{self._partition}" + (f"-{n}" if n else "") + ".parquet"
            tmp = directory / f".{name}.tmp"
            self._writers[day] = (pq.ParquetWriter(tmp, self._schema), directory / name)
            for old in sorted(self._writers)[:-2]:
                if old != day:  # a late row's date stays open until the next new date
                    self._finish(old, keep=True)
        self._writers[day][0].write_table(table)

    def _finish(self, day: str, keep: bool) -> None:
        writer, final = self._writers.pop(day)
        writer.close()
        tmp = final.with_name(f".{final.name}.tmp")
        if keep:
            tmp.replace(final)
        else:
            tmp.unlink(missing_ok=True)

    def close(self, keep: bool = True) -> None:
        """Close the files and move them into place (``keep=False``: delete them; files
        of dates closed earlier stay)."""
        for day in list(self._writers):
            self._finish(day, keep)


def _by_date(items: Sequence[T], when: Callable[[T], int]) -> dict[str, list[T]]:
    out: dict[str, list[T]] = {}
    for item in items:
        out.setdefault(date_of(when(item)), []).append(item)
    return out


def replay_partition(job: Job, partition: int, files: list[str]) -> dict[str, int]:
    """Replay Kafka partition ``partition`` of ``files``; returns the counts."""
    from models.distributed._archive import partition_records

    use_system_pool()
    loaded = load_for_worker(job.registry, job.model_name, job.model_version)
    artifact, grace, rules = prepared(loaded, job.grace_ms, job.idle_ms, job.silence_ms, job.ttl_ms)
    counts = {"readings": 0, "valued": 0, "late_readings": 0, "windows": 0}
    counts.update({PREDICTIONS: 0, ALERTS: 0})

    def counted(records: Iterator[Record]) -> Iterator[Record]:
        for record in records:
            counts["readings"] += 1
            counts["valued"] += record[2][2] is not None
            yield record

    out = Path(job.output)
    preds = _DatedParquet(out / PREDICTIONS, partition, predictions_table([]).schema)
    alerts = _DatedParquet(out / ALERTS, partition, alerts_table([]).schema)
    publisher = Publisher(job.kafka, *job.topics) if job.kafka is not None else None
    records = partition_records(
        [Path(f) for f in files], partition, artifact.spec.metric, job.start_ms, job.end_ms
    )
    try:
        for view in iter_clocked(counted(records), artifact, grace, rules, job.flush, job.chunk):
            _write(preds, alerts, view.predictions, view.alerts)
            if publisher is not None:
                publisher.send(view.predictions, view.alerts)
            counts["late_readings"] += view.late
            counts["windows"] += len(view.windows)
            counts[PREDICTIONS] += len(view.predictions)
            counts[ALERTS] += len(view.alerts)
            del view  # the chunk's outputs are written: free them before trimming
            release_free_memory()
    except BaseException:
        preds.close(keep=False)
        alerts.close(keep=False)
        raise
    preds.close()
    alerts.close()
    if publisher is not None:
        publisher.close()
    return counts


def _write(
    preds: _DatedParquet,
    alerts: _DatedParquet,
    predictions: list[Prediction],
    raised: list[Alert],
) -> None:
    for day, some in _by_date(predictions, lambda p: p.window_end).items():
        preds.write(day, predictions_table(some))
    for day, few in _by_date(raised, lambda a: a.ts).items():
        alerts.write(day, alerts_table(few))
