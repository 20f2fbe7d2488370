"""The client side of ``iotml train --engine dask``: one task per Kafka partition.

Local training windows every device's readings independently (no partition clock), so any
split by device would do; the archive's Kafka partitions are the split the files already
have. The client submits the tasks (:mod:`._train_task`) and merges their bounded
summaries as they finish into a :class:`~models.trainset.TrainingSet`: every count, the
band of every device, and samples of at most the job's caps. When the caps exceed the
data the set is exactly the one local training computes (the rows in another order).
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.bands import Baseline, Baselines, learn_baselines
from models.distributed._archive import partitions_of, select_files
from models.distributed._sample import BottomK, merged
from models.distributed._train_task import (
    TrainJob,
    partition_bands,
    summary_of,
    survey_partition,
    train_partition,
)
from models.errors import DataError
from models.sizing import DEFAULT_MIN_COUNT
from models.trainset import MIN_EXAMPLES, TrainingSet

if TYPE_CHECKING:
    from distributed import Client

Progress = Callable[[str], None]


def _submit(client: Client, job: TrainJob, task: Callable[..., Any], name: str) -> list[Any]:
    """``task`` submitted for every Kafka partition of the archive: its futures."""
    files = select_files(Path(job.archive), None, job.end_ms)
    paths = [str(f) for f in files]
    run = uuid.uuid4().hex[:8]
    return [
        client.submit(task, job, k, paths, key=f"iotml-{name}-{run}-{k}", pure=False)
        for k in partitions_of(files)
    ]


def plan(job: TrainJob, client: Client, min_count: int | None, train_fraction: float) -> TrainJob:
    """``job`` with what local training takes from the data when the flags do not give it:
    the end of the first ``train_fraction`` of the time range, then ``min_count`` (half the
    median readings per window of what remains, as :func:`models.sizing.choose_min_count`);
    a survey pass over the archive for each."""
    if train_fraction < 1.0:
        first, last = _range(survey(job, client))
        job = dataclasses.replace(job, end_ms=first + int(train_fraction * (last - first)))
    if min_count is None:
        found = survey(job, client)
        _range(found)  # no readings: say so
        counts: Counter[int] = Counter()
        for part in found:
            counts.update(part["counts"])
        min_count = min_count_of(counts)
    return dataclasses.replace(job, spec=dataclasses.replace(job.spec, min_count=min_count))


def survey(job: TrainJob, client: Client) -> list[dict[str, Any]]:
    from distributed import as_completed

    futures = _submit(client, job, survey_partition, "survey")
    return [future.result() for future in as_completed(futures)]


def _range(parts: list[dict[str, Any]]) -> tuple[int, int]:
    firsts = [p["first_ts"] for p in parts if p["first_ts"] is not None]
    if not firsts:
        raise DataError("no readings of the model's metric in the archive")
    return min(firsts), max(p["last_ts"] for p in parts if p["last_ts"] is not None)


def min_count_of(counts: Mapping[int, int]) -> int:
    """:func:`models.sizing.choose_min_count` from ``{readings in a window: windows}``."""
    total = sum(counts.values())
    if not total:
        return DEFAULT_MIN_COUNT
    ordered = sorted(counts)
    cumulative = np.cumsum([counts[c] for c in ordered])

    def nth(i: int) -> int:  # the i-th smallest window count (0-based)
        return ordered[int(np.searchsorted(cumulative, i + 1))]

    median = (nth((total - 1) // 2) + nth(total // 2)) / 2
    return max(1, min(DEFAULT_MIN_COUNT, math.ceil(median / 2)))


def run_dask_training(
    job: TrainJob, client: Client, progress: Progress | None = None
) -> TrainingSet:
    """The training set of the archive ``job.archive``, computed on the cluster of
    ``client``. :class:`~models.errors.DataError` when it is too small to train on."""
    from distributed import as_completed

    width = len(job.spec.names())
    rows, values = BottomK(job.rows), BottomK(job.values)
    means: dict[str, list[float]] = {}
    totals = {"readings": 0, "late": 0, "devices": 0, "examples": 0}
    firsts: list[int] = []
    lasts: list[int] = []
    trained = _submit(client, job, train_partition, "train")  # results stay on the workers
    summaries = as_completed(client.submit(summary_of, f, pure=False) for f in trained)
    for done, future in enumerate(summaries, 1):
        part = future.result()
        rows.merge(part.rows)
        values.merge(part.values)
        means = merged([means, part.means], job.band_devices)
        for name in totals:
            totals[name] += getattr(part, name)
        if part.first_ts is not None and part.last_ts is not None:
            firsts.append(part.first_ts)
            lasts.append(part.last_ts)
        if progress is not None:
            progress(
                f"partition {done}/{len(trained)}: {part.readings} readings, "
                f"{part.examples} examples, {part.devices} devices"
            )
    if not firsts:
        raise DataError(f"no readings of {job.spec.metric!r} in {job.archive}")
    if totals["examples"] < MIN_EXAMPLES:
        raise DataError(
            f"only {totals['examples']} training examples (need {MIN_EXAMPLES}) from "
            f"{totals['readings']} readings; `iotml train --engine local` on a part of "
            "the archive says which setting to change"
        )
    fleet = learn_baselines(means)  # the sampled devices: the fleet's band, z and rate
    bands: Baselines | None = None
    if fleet is not None:
        devices: dict[str, Baseline] = {}
        for future in as_completed(
            client.submit(partition_bands, f, fleet.rate, pure=False) for f in trained
        ):
            devices.update(future.result())
        bands = dataclasses.replace(fleet, devices=devices)
    del trained  # the workers drop the partitions' window means
    return TrainingSet(
        X=rows.column("X", np.empty((0, width), dtype=np.float32)),
        y=rows.column("y", np.empty(0)),
        last=rows.column("last", np.empty(0)),
        ends=rows.column("ends", np.empty(0, dtype=np.int64)),
        values=values.column("value", np.empty(0)),
        bands=bands,
        readings=totals["readings"],
        late=totals["late"],
        devices=totals["devices"],
        first_ts=min(firsts),
        last_ts=max(lasts),
        examples=totals["examples"],
    )
