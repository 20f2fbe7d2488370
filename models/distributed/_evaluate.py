"""The client side of ``iotml evaluate --engine dask``: one task per Kafka partition.

The tasks (:mod:`._evaluate_task`) replay their partitions; the client adds up their sums
and counts in partition order (the order the local engine replays the archive in, so the
alerts come in its order too) and builds the report with the local engine's code
(:func:`models.evaluation.report_of`, :func:`models.baselines.summary`). The ridge
baseline needs a fit on the training period before it can be scored: the client fits it
on the merged samples of the tasks' training rows, and a second pass over the results the
workers kept scores it. Below the sample's cap the fit sees every training row, the ones
local evaluation fits on (in another order: equal up to float rounding).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.baselines import fit_baseline, summary
from models.distributed._archive import partitions_of, select_files
from models.distributed._evaluate_task import (
    SUMS,
    EvalJob,
    PartitionScores,
    ridge_sum,
    score_partition,
    scores_of,
)
from models.distributed._sample import BottomK
from models.errors import DataError
from models.evaluation import Label, Scores, report_of

if TYPE_CHECKING:
    from distributed import Client

    from models.registry import Artifact

Progress = Callable[[str], None]


def run_dask_evaluation(
    job: EvalJob,
    artifact: Artifact,
    client: Client,
    labels: Sequence[Label] = (),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report ``iotml evaluate`` prints (baselines included) for the archive
    ``job.archive``, computed on the cluster of ``client``; ``artifact`` is the version the
    job names (loaded without its model: the client never forecasts)."""
    from distributed import as_completed

    # the whole archive: readings before --from warm up the windows, as locally
    files = select_files(Path(job.archive), None, None)
    paths = [str(f) for f in files]
    run = uuid.uuid4().hex[:8]
    kept = {
        k: client.submit(score_partition, job, k, paths, key=f"iotml-eval-{run}-{k}", pure=False)
        for k in partitions_of(files)
    }
    pending = {client.submit(scores_of, f, pure=False): k for k, f in kept.items()}
    parts: dict[int, PartitionScores] = {}
    for done, future in enumerate(as_completed(pending), 1):
        k = pending[future]
        parts[k] = future.result()
        if progress is not None:
            s = parts[k].scores
            progress(
                f"partition {k} ({done}/{len(kept)}): {s.readings} readings, "
                f"{s.n} forecasts scored, {len(s.opened)} alerts opened"
            )
    scores, sums, rows = Scores(), dict.fromkeys(SUMS, 0.0), BottomK(job.rows)
    for k in sorted(parts):  # partition order: the local engine's order of the alerts
        scores.add(parts[k].scores)
        for name in SUMS:
            sums[name] += parts[k].sums[name]
        rows.merge(parts[k].rows)
    if not scores.readings:
        raise DataError(f"no readings of metric {artifact.spec.metric!r} in {job.archive}")
    report = report_of(scores, artifact, labels, job.from_ms)

    width = len(artifact.spec.names())
    X = rows.column("X", np.empty((0, width), dtype=np.float32))
    ridge = fit_baseline(
        X,
        rows.column("y", np.empty(0)),
        rows.column("last", np.empty(0)),
        rows.column("ends", np.empty(0, dtype=np.int64)),
        artifact.manifest,
    )
    ridge_abs = 0.0
    if ridge is not None:
        shared = client.scatter(ridge, broadcast=True)  # a few coefficients, to every worker
        scored = {k: client.submit(ridge_sum, f, shared, pure=False) for k, f in kept.items()}
        ridge_abs = sum(scored[k].result() for k in sorted(scored))
    del kept  # the workers drop the scored windows' feature rows
    report["baselines"] = summary(sums, ridge, len(X), ridge_abs)
    if rows.seen > len(X):
        report["baselines"]["ridge_sampled_from"] = rows.seen
    return report
