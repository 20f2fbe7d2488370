"""What one Dask task of ``iotml train --engine dask`` does, on a worker (no TensorFlow).

It streams one Kafka partition of the archive (:mod:`._archive`) through the code local
training runs (:func:`models.replay.window_series`, :func:`models.replay.training_examples`,
:func:`models.bands.learn_baselines`), so the windows and features are the stream's, and
returns a summary of bounded size: counts, a sample of its feature rows and of its
readings' values (:mod:`._sample`) and the window means of a sample of its devices (the
client learns the fleet's band, the deviation threshold and the bands' rate from them).
A second task then learns the band of each of its devices at that rate (a device lives
in one partition, so its band is exactly the one local training learns). A task holds
the partition's windows, never its readings.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.bands import Baseline, learn_baselines
from models.distributed._archive import partition_records
from models.distributed._sample import BottomK, row_keys, smallest, value_keys
from models.features import FeatureSpec
from models.replay import Point, Record, training_examples, window_series
from models.trainset import window_means

_FLUSH = 65_536  # readings' values hashed and sampled at a time


@dataclass(frozen=True)
class TrainJob:
    """What a training task needs (picklable: it travels to the workers)."""

    archive: str
    spec: FeatureSpec
    grace_ms: int = 0
    end_ms: int | None = None  # only readings before (--train-fraction)
    device: str | None = None  # only this device
    rows: int = 500_000  # feature rows the fit may use (a sample of all)
    values: int = 1_000_000  # readings' values the range limits are learned from
    band_devices: int = 5_000  # devices whose window means give the fleet band and z


@dataclass
class Tally:
    """What a task saw of its readings, besides the windows."""

    values: BottomK
    readings: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    devices: set[str] = field(default_factory=set)
    _crc: dict[str, int] = field(default_factory=dict)
    _pending: list[tuple[int, int, float]] = field(default_factory=list)

    def points(self, records: Iterator[Record], device: str | None) -> Iterator[Point]:
        """The readings of the model's metric (of ``device``), as local training loads
        them from the archive, counted and sampled on the way."""
        for _, _, (dev, ts, value, _) in records:
            if value is None or (device is not None and dev != device):
                continue
            self.readings += 1
            self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
            self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
            crc = self._crc.get(dev)
            if crc is None:
                crc = self._crc[dev] = zlib.crc32(dev.encode())
                self.devices.add(dev)
            if self.values.k:
                self._pending.append((crc, ts, value))
            if len(self._pending) >= _FLUSH:
                self.flush()
            yield dev, ts, value
        self.flush()

    def flush(self) -> None:
        if self._pending:
            crc, ts, value = (np.asarray(c) for c in zip(*self._pending, strict=True))
            value = value.astype(np.float64)
            self.values.add(value_keys(crc, ts, value), value=value)
            self._pending.clear()


@dataclass
class PartitionSummary:
    """What a training task sends back to the client (bounded by the job's caps)."""

    readings: int
    late: int
    devices: int
    first_ts: int | None
    last_ts: int | None
    examples: int
    rows: BottomK
    values: BottomK
    means: dict[str, list[float]]  # of the sampled devices only


#: A task's result, kept on its worker: the summary, and every device's window means for
#: :func:`partition_bands` (the client fetches only the summary).
Trained = tuple[PartitionSummary, dict[str, list[float]]]


def train_partition(job: TrainJob, partition: int, files: list[str]) -> Trained:
    """The training summary of Kafka partition ``partition`` of ``files``."""
    tally = Tally(BottomK(job.values))
    records = partition_records(
        [Path(f) for f in files], partition, job.spec.metric, None, job.end_ms
    )
    series = window_series(tally.points(records, job.device), job.spec, job.grace_ms)
    X, y, last, ends = training_examples(series.windows, job.spec)
    rows = BottomK(job.rows)
    rows.add(row_keys(X, y, ends), X=X, y=y, last=last, ends=ends)
    rows.trim()
    tally.values.trim()
    means = window_means(series.windows)
    summary = PartitionSummary(
        readings=tally.readings,
        late=series.late,
        devices=len(tally.devices),
        first_ts=tally.first_ts,
        last_ts=tally.last_ts,
        examples=len(X),
        rows=rows,
        values=tally.values,
        means=smallest(means, job.band_devices),
    )
    return summary, means


def summary_of(trained: Trained) -> PartitionSummary:
    return trained[0]


def partition_bands(trained: Trained, rate: float) -> dict[str, Baseline]:
    """The bands of the partition's devices, learned at the fleet's ``rate`` (fitted on
    the client): a device's band needs only its own window means and that rate, so it is
    the band local training learns for it."""
    learned = learn_baselines(trained[1], rates=(rate,))
    return dict(learned.devices) if learned is not None else {}


def survey_partition(job: TrainJob, partition: int, files: list[str]) -> dict[str, object]:
    """Before training, when the data must choose: the time range of the partition's
    readings of the metric (for ``--train-fraction``) and how many distinct readings its
    windows hold (``{count: windows}``, for the default ``--min-count``)."""
    tally = Tally(BottomK(0))
    records = partition_records(
        [Path(f) for f in files], partition, job.spec.metric, None, job.end_ms
    )
    points = tally.points(records, job.device)
    # the windows hold one reading per timestamp, as readings_per_window counts them
    series = window_series(points, job.spec, job.grace_ms, flush=True)
    counts = Counter(w.stats.count for w in series.windows)
    return {"first_ts": tally.first_ts, "last_ts": tally.last_ts, "counts": counts}
