"""What one Dask task of ``iotml evaluate --engine dask`` does, on a worker (no TensorFlow).

Local evaluation replays every device independently (:func:`models.replay.run`, no
partition clock), and a device lives in one Kafka partition, so a partition's replay gives
exactly the windows, forecasts and alerts the local replay gives for its devices. A task
replays its partition with the code local evaluation runs
(:func:`models.evaluation.replay`, :mod:`models.baselines`) and keeps on its worker, for
the ridge baseline's second pass, the feature rows of its scored windows; the client gets
only sums and counts, the alerts opened, and a bounded sample of the partition's
training-period feature rows (:mod:`._sample`) to fit the ridge on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.baselines import Ridge, error_sums, ridge_error, ridge_examples, ridge_inputs
from models.distributed._archive import partition_records
from models.distributed._model import load_for_worker
from models.distributed._sample import BottomK, row_keys
from models.evaluation import Scores, replay
from models.replay import Point

SUMS = ("n", "model_abs", "persistence_abs", "seasonal_n", "seasonal_abs")


@dataclass(frozen=True)
class EvalJob:
    """What an evaluation task needs (picklable: it travels to the workers)."""

    archive: str
    registry: str
    model_name: str
    model_version: str  # resolved on the client: every task runs the same version
    grace_ms: int
    from_ms: int | None = None
    device: str | None = None  # only this device
    rows: int = 500_000  # training feature rows the ridge baseline may be fitted on


@dataclass
class PartitionScores:
    """What an evaluation task sends back to the client (bounded, but for the alerts)."""

    scores: Scores
    sums: dict[str, float]  # models.baselines.error_sums
    rows: BottomK  # a sample of the training-period feature rows (X, y, last, ends)


#: A task's result, kept on its worker: the summary, and the feature rows, last and actual
#: values of the scored windows (for :func:`ridge_sum`; the client fetches the summary).
Kept = tuple[PartitionScores, tuple[np.ndarray, np.ndarray, np.ndarray]]


def score_partition(job: EvalJob, partition: int, files: list[str]) -> Kept:
    """The scores of Kafka partition ``partition`` of ``files``."""
    artifact = load_for_worker(job.registry, job.model_name, job.model_version)
    spec = artifact.spec
    records = partition_records([Path(f) for f in files], partition, spec.metric)
    # the points local evaluation loads from the archive: the metric's, of --device
    points: list[Point] = [
        (dev, ts, value)
        for _, _, (dev, ts, value, _) in records
        if value is not None and (job.device is None or dev == job.device)
    ]
    rows = BottomK(job.rows)
    width = len(spec.names())
    if not points:  # no reading of the metric (of --device) in this partition
        nothing = (np.empty((0, width)), np.empty(0), np.empty(0))
        return PartitionScores(Scores(), dict.fromkeys(SUMS, 0.0), rows), nothing
    evaluation = replay(points, artifact, job.from_ms, job.grace_ms)
    assert evaluation.scores is not None
    X, y, last, ends = ridge_examples(points, artifact, job.grace_ms)
    rows.add(row_keys(X, y, ends), X=X, y=y, last=last, ends=ends)
    rows.trim()
    summary = PartitionScores(evaluation.scores, error_sums(evaluation, spec), rows)
    return summary, ridge_inputs(evaluation, spec)


def scores_of(kept: Kept) -> PartitionScores:
    return kept[0]


def ridge_sum(kept: Kept, ridge: Ridge | None) -> float:
    """The sum of the ridge's absolute errors on the partition's scored windows."""
    return ridge_error(ridge, *kept[1])
