"""What a forecaster is fitted on, whichever engine computed it (no TensorFlow here).

:func:`models.training.fit` takes a :class:`TrainingSet`: the feature rows and their
targets (:func:`models.replay.training_examples`, the stream's feature code), the readings'
values the range limits are learned from, the per-device bands and a few counts for the
manifest. :func:`from_points` builds it in one process; ``iotml train --engine dask``
builds it from per-partition summaries computed on a cluster (:mod:`models.distributed`),
where the rows and values may be a bounded sample of all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from models.bands import Baselines, learn_baselines
from models.closing import ClosedWindow
from models.features import FeatureSpec
from models.replay import Point, training_examples, window_series
from models.sizing import too_little_data

#: Fewer examples than this cannot train a model.
MIN_EXAMPLES = 20


@dataclass(frozen=True)
class TrainingSet:
    X: np.ndarray  # feature rows (float32, one per example)
    y: np.ndarray  # the target: the last value one horizon after the window's end
    last: np.ndarray  # the window's last value (the forecast is relative to it)
    ends: np.ndarray  # the window's end (epoch ms): the validation split is by time
    values: np.ndarray  # readings' values: the range limits are their quantiles
    bands: Baselines | None
    readings: int
    late: int
    devices: int
    first_ts: int
    last_ts: int
    examples: int  # all examples of the input; more than len(X) when X is a sample

    def manifest(self) -> dict[str, int]:
        """The counts a version's manifest records about its training data."""
        return {
            "readings": self.readings,
            "late_readings": self.late,
            "devices": self.devices,  # a count: a fleet's list would bloat every manifest
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "examples": self.examples,
            "sampled_examples": len(self.X),
        }


def window_means(windows: Iterable[ClosedWindow]) -> dict[str, list[float]]:
    """Each device's window means in closing order: what its band is learned from."""
    means: dict[str, list[float]] = {}
    for w in windows:
        means.setdefault(w.device_id, []).append(w.stats.mean)
    return means


def from_points(points: Sequence[Point], spec: FeatureSpec, grace_ms: int = 0) -> TrainingSet:
    """Every example of ``points`` (one process); :class:`~models.errors.DataError` with
    what to change when there are too few to train on."""
    from models.errors import DataError

    series = window_series(points, spec, grace_ms)
    X, y, last, ends = training_examples(series.windows, spec)
    if len(X) < MIN_EXAMPLES:
        raise DataError(too_little_data(series.windows, spec, len(points), len(X), MIN_EXAMPLES))
    timestamps = [p[1] for p in points]
    return TrainingSet(
        X=X,
        y=y,
        last=last,
        ends=ends,
        values=np.asarray([p[2] for p in points], dtype=np.float64),
        bands=learn_baselines(window_means(series.windows)),
        readings=len(points),
        late=series.late,
        devices=len({p[0] for p in points}),
        first_ts=min(timestamps),
        last_ts=max(timestamps),
        examples=len(X),
    )
