"""iotml as a NAB detector: one file is one device's stream, replayed through the
processor's code (:func:`models.replay.run_clocked`, as ``iotml batch`` runs it).

The system starts with no model and learns from the probation rows only (NAB's rules):
its feature settings come from those rows (the sampling interval sets the window). The
default detector is the statistical baseline from the first row: persistence forecasts
judged by the anomaly likelihood, and each window's mean judged against the device's own
band (``deviation``), whose rate is fitted on the probation rows; the other trains a
forecaster and its alert thresholds on those rows with :mod:`models.training`. Then every
row is replayed. A detection is an alert ``open`` event at its ``ts`` (not its
``episode_start``, which lies earlier), scored at the first row stamped at or after it.
A file whose probation rows are too few to train on gets no model and no detections.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from models.alerts import AlertParams
from models.bands import fit_rate
from models.clock import rules_for
from models.errors import DataError
from models.features import FeatureSpec
from models.nab import FileScore, RowIndex, probation_rows, score_file
from models.nab_data import NabFile
from models.registry import Artifact, Registry
from models.replay import Record, run_clocked
from models.sizing import choose_min_count
from models.statistical import (
    DEVIATION_Z,
    LIKELIHOOD,
    LIKELIHOOD_RATE,
    LIKELIHOOD_SHORT,
    LIKELIHOOD_WARMUP,
    PERSISTENCE,
    persistence_artifact,
)

DEVICE = "nab"
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Settings:
    """The one set of settings for every file; the window is ``window_intervals`` times
    the median sampling interval of the probation rows (rounded to whole minutes)."""

    window_intervals: int = 1
    horizon_windows: int = 1
    k: int = 4
    epochs: int = 200
    seed: int = 42
    threads: int = 2
    # "likelihood": the statistical baseline (persistence) judged by the anomaly
    # likelihood, from the first rows; "model": a forecaster trained on the probation rows
    # with its learned residual threshold (the rule before the likelihood)
    detector: str = "likelihood"
    # defaults: the cold-start baseline's rule (models.statistical), which this runner tuned
    likelihood: float = LIKELIHOOD
    likelihood_short: int = LIKELIHOOD_SHORT
    likelihood_rate: float = LIKELIHOOD_RATE
    likelihood_warmup: int = LIKELIHOOD_WARMUP
    cooldown_hours: float = 6.0
    # with "likelihood": the deviation from the device's own band too (None: off); the
    # band's rate is fitted on the probation rows' window means (models.bands.fit_rate)
    deviation_z: float | None = DEVIATION_Z


@dataclass
class FileRun:
    key: str
    result: FileScore
    detections: list[int]  # rows, ascending, probation included (NAB ignores those)
    spec: FeatureSpec
    version: str | None  # the model trained on the probation rows
    why_no_model: str | None = None
    alerts: dict[str, int] = field(default_factory=dict)  # opened per alert type


def spec_for(timestamps: Sequence[int], settings: Settings) -> FeatureSpec:
    """Feature settings from the rows seen so far."""
    steps = [b - a for a, b in pairwise(timestamps) if b > a]
    interval = statistics.median(steps) if steps else MINUTE_MS
    window = max(MINUTE_MS, round(settings.window_intervals * interval / MINUTE_MS) * MINUTE_MS)
    points = [(DEVICE, ts, 0.0) for ts in timestamps]
    return FeatureSpec(
        metric="value",
        window_ms=window,
        k=settings.k,
        horizon_ms=settings.horizon_windows * window,
        min_count=choose_min_count(points, window),
    )


def probation_rate(points: Sequence[tuple[str, int, float]], window_ms: int) -> float:
    """The rate at which a band's level best follows the window means of the probation
    rows (the rows the detector may learn from before it is scored)."""
    windows: dict[int, list[float]] = {}
    for _, ts, v in points:
        windows.setdefault(ts // window_ms, []).append(v)
    return fit_rate([[sum(vs) / len(vs) for _, vs in sorted(windows.items())]])


def run_file(nab: NabFile, settings: Settings, workdir: Path) -> FileRun:
    """Replay all rows of ``nab`` through the detector of ``settings`` and score its
    alerts."""
    probation = probation_rows(nab.rows)
    points = [(DEVICE, ts, v) for ts, v in zip(nab.timestamps, nab.values, strict=True)]
    spec = spec_for(nab.timestamps[:probation], settings)
    if settings.detector == "likelihood":
        spec = FeatureSpec("value", spec.window_ms, 1, spec.window_ms, 1)
        params = AlertParams(
            anomaly_likelihood=settings.likelihood,
            likelihood_short=settings.likelihood_short,
            likelihood_rate=settings.likelihood_rate,
            likelihood_warmup=settings.likelihood_warmup,
            cooldown_ms=int(settings.cooldown_hours * 3_600_000),
            deviation_z=settings.deviation_z,
            band_rate=probation_rate(points[:probation], spec.window_ms),
        )
        artifact = persistence_artifact(spec, params, "nab")
        return _replay(nab, points, artifact, spec, PERSISTENCE)
    return _train_and_replay(nab, points, probation, spec, settings, workdir)


def _train_and_replay(
    nab: NabFile,
    points: list[tuple[str, int, float]],
    probation: int,
    spec: FeatureSpec,
    settings: Settings,
    workdir: Path,
) -> FileRun:
    from models.training import TrainConfig, train  # imports TensorFlow when it trains

    registry = Registry(workdir)
    name = "nab-" + "".join(c if c.isalnum() else "-" for c in nab.key).strip("-").lower()
    config = TrainConfig(
        spec=spec, epochs=settings.epochs, seed=settings.seed, threads=settings.threads
    )
    try:
        version = train(points[:probation], config, registry, name, nab.key, lambda _: None)
    except DataError as exc:
        return FileRun(nab.key, score_file(nab.rows, nab.windows, []), [], spec, None, str(exc))
    return _replay(nab, points, registry.load(name, version.version), spec, version.version)


def _replay(
    nab: NabFile,
    points: list[tuple[str, int, float]],
    artifact: Artifact,
    spec: FeatureSpec,
    version: str,
) -> FileRun:
    grace = artifact.grace_ms
    rules = rules_for(spec, grace, None, artifact.alert_params.silence_ms, 0)
    records: list[Record] = [(0, None, (d, ts, v, {})) for d, ts, v in points]
    view = run_clocked(records, artifact, grace, rules)
    opened = [a for a in view.alerts if a.event == "open"]
    index = RowIndex(nab.timestamps)
    rows = {index.at_or_after(a.ts) for a in opened}
    detections = sorted(r for r in rows if r is not None)
    counts: dict[str, int] = {}
    for a in opened:
        counts[a.type] = counts.get(a.type, 0) + 1
    result = score_file(nab.rows, nab.windows, detections)
    return FileRun(nab.key, result, detections, spec, version, None, counts)
