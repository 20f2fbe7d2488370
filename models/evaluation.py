"""Scoring a model on recorded readings: forecast error and labelled-failure detection.

* ``mae`` is the mean absolute error of the forecasts against the last value of the window
  they target (``horizon`` later), over the forecasts made at or after ``from``;
  ``persistence_mae`` scores "no change" (forecast = the window's last value) on the same
  points.
* A labelled window counts as **detected** when an alert opens in
  ``[window start - 24 h, label time]``; its lead time is label time - first such alert.
  Alerts opening outside every ``[window start - 24 h, window end]`` are **false alerts**,
  reported per week of evaluated time.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iotml.core.durations import parse_duration_ms
from iotml.core.records import Alert
from models.errors import DataError
from models.registry import Artifact
from models.replay import BatchView, Point, run

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
EARLY_MS = DAY_MS  # how long before a labelled window an alert still counts


@dataclass(frozen=True, slots=True)
class Label:
    start: int
    end: int
    time: int


@dataclass
class Evaluation:
    report: dict[str, Any]
    view: BatchView
    scored: list[tuple[int, float, float, float]] = field(default_factory=list)
    # (target_ts, forecast, actual, last_value) per scored forecast
    keys: list[tuple[str, int]] = field(default_factory=list)  # its (device_id, window_end)
    scores: Scores | None = None


def _ms(text: str) -> int:
    import pandas as pd

    stamp = pd.Timestamp(text)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value // 1_000_000)


_AGE = re.compile(r"^\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)\s*$")


def parse_time(text: str, now_ms: int | None = None) -> int:
    """Epoch ms from a date-time (``"2014-01-20 12:00"``, UTC unless an offset is given),
    epoch-ms digits, ``now``, or an age with a unit: ``"14d"`` is 14 days before
    ``now_ms`` (default: the wall clock)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text == "now" or _AGE.match(text):
        now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        return now if text == "now" else now - parse_duration_ms(text)
    try:
        return _ms(text)
    except ValueError:
        raise DataError(
            f"not a time: {text!r} (an ISO date-time, epoch ms, 'now' or an age such as 14d)"
        ) from None


def load_labels(
    windows_path: Path, label_times_path: Path | None, key: str | None, source: str
) -> list[Label]:
    """NAB-style label files: ``{key: [[start, end], ...]}`` and ``{key: [time, ...]}``.
    Without a key, the one whose name ends like ``source`` (or the only one) is used."""
    windows_doc = json.loads(windows_path.read_text())
    if key is None:
        tail = "/".join(Path(source).parts[-2:])
        matches = [k for k in windows_doc if k.endswith(tail) or k == Path(source).name]
        if len(matches) != 1 and len(windows_doc) == 1:
            matches = list(windows_doc)
        if len(matches) != 1:
            raise DataError(f"say which --labels-key to use; the file has {list(windows_doc)}")
        key = matches[0]
    if key not in windows_doc:
        raise DataError(f"labels key {key!r} not in {windows_path}")
    spans = [(_ms(a), _ms(b)) for a, b in windows_doc[key]]
    if label_times_path is not None:
        times = [_ms(t) for t in json.loads(label_times_path.read_text())[key]]
    else:
        times = [(a + b) // 2 for a, b in spans]
    labels = []
    for a, b in spans:
        inside = [t for t in times if a <= t <= b]
        labels.append(Label(a, b, inside[0] if inside else (a + b) // 2))
    return labels


@dataclass
class Scores:
    """What the report is made of: counts and sums that add up over parts of the input
    (each holding all readings of its devices, such as a Kafka partition), and the alerts
    opened from ``from`` on (the few a report lists)."""

    readings: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    windows: int = 0
    predictions: int = 0
    after: int = 0  # predictions from ``from`` on
    late: int = 0
    n: int = 0  # scored forecasts
    model_abs: float = 0.0  # sums of absolute errors over them
    persistence_abs: float = 0.0
    opened: list[Alert] = field(default_factory=list)

    def add(self, other: Scores) -> None:
        """Take in the scores of another part (alerts follow in the order parts are added)."""
        for name in ("readings", "windows", "predictions", "after", "late", "n"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.model_abs += other.model_abs
        self.persistence_abs += other.persistence_abs
        if other.first_ts is not None and other.last_ts is not None:
            firsts = [t for t in (self.first_ts, other.first_ts) if t is not None]
            lasts = [t for t in (self.last_ts, other.last_ts) if t is not None]
            self.first_ts, self.last_ts = min(firsts), max(lasts)
        self.opened.extend(other.opened)


def replay(
    points: Sequence[Point], artifact: Artifact, from_ms: int | None = None, grace_ms: int = 0
) -> Evaluation:
    """Replay ``points`` through the artifact (all of them, so the first evaluated windows
    have their history) and score the forecasts from ``from_ms`` on, without a report:
    :func:`evaluate` on all the input, ``iotml evaluate --engine dask`` on each partition."""
    view = run(points, artifact, grace_ms)
    start = from_ms if from_ms is not None else -(2**63)  # every window ends after a reading
    actual = {
        (w.device_id, w.stats.end): w.stats.last
        for w in view.windows
        if w.stats.count >= artifact.spec.min_count
    }
    scored, keys = [], []
    for p in view.predictions:
        target = actual.get((p.device_id, p.target_ts))
        if p.window_end >= start and target is not None:
            scored.append((p.target_ts, p.forecast, target, p.last_value))
            keys.append((p.device_id, p.window_end))
    arr = np.asarray([s[1:] for s in scored], dtype=np.float64).reshape(len(scored), 3)
    scores = Scores(
        readings=len(points),
        first_ts=min(p[1] for p in points),
        last_ts=max(p[1] for p in points),
        windows=len(view.windows),
        predictions=len(view.predictions),
        after=sum(p.window_end >= start for p in view.predictions),
        late=view.late,
        n=len(scored),
        model_abs=float(np.sum(np.abs(arr[:, 0] - arr[:, 1]))),
        persistence_abs=float(np.sum(np.abs(arr[:, 2] - arr[:, 1]))),
        opened=[a for a in view.alerts if a.event == "open" and a.ts >= start],
    )
    return Evaluation({}, view, scored, keys, scores)


def evaluate(
    points: Sequence[Point],
    artifact: Artifact,
    labels: Sequence[Label] = (),
    from_ms: int | None = None,
    grace_ms: int = 0,
) -> Evaluation:
    """Replay ``points`` through the artifact and score what happens from ``from_ms`` on."""
    evaluation = replay(points, artifact, from_ms, grace_ms)
    assert evaluation.scores is not None
    evaluation.report = report_of(evaluation.scores, artifact, labels, from_ms)
    return evaluation


def report_of(
    scores: Scores, artifact: Artifact, labels: Sequence[Label] = (), from_ms: int | None = None
) -> dict[str, Any]:
    """The report of the scores of all the input (see the module doc)."""
    spec = artifact.spec
    if scores.first_ts is None or scores.last_ts is None:
        raise DataError(f"no readings of metric {spec.metric!r} in the input")
    start = from_ms if from_ms is not None else scores.first_ts
    end = scores.last_ts
    if not scores.n:
        raise DataError(
            f"no forecast could be scored: {scores.readings} readings gave {scores.windows} "
            f"windows and {scores.predictions} forecasts, {scores.after} of them from "
            f"{_iso(start)} on, none with a target window (one horizon later) holding "
            f"min_count {spec.min_count} readings. Fix: more data after --from, or an "
            f"earlier --from"
        )
    opened = [a for a in scores.opened if a.ts >= start]
    in_scope = [lb for lb in labels if start <= lb.time <= end]
    detections = []
    for lb in in_scope:
        hits = [a for a in opened if lb.start - EARLY_MS <= a.ts <= lb.time]
        first = min(hits, key=lambda a: a.ts) if hits else None
        detections.append(
            {
                "window_start": _iso(lb.start),
                "label_time": _iso(lb.time),
                "detected": first is not None,
                "lead_time_h": None if first is None else round((lb.time - first.ts) / 3.6e6, 2),
                "first_alert": None if first is None else _alert_json(first),
            }
        )
    false = [a for a in opened if not any(lb.start - EARLY_MS <= a.ts <= lb.end for lb in labels)]
    weeks = max(end - start, 1) / WEEK_MS
    report: dict[str, Any] = {
        "model": f"{artifact.name}/{artifact.version}",
        "metric": spec.metric,
        "window": spec.window_ms,
        "horizon": spec.horizon_ms,
        "from": _iso(start),
        "to": _iso(end),
        "n": scores.n,
        "mae": round(scores.model_abs / scores.n, 6),
        "persistence_mae": round(scores.persistence_abs / scores.n, 6),
        "late_readings": scores.late,
        "alerts": [_alert_json(a) for a in opened],
        "alert_counts": {
            kind: sum(a.type == kind for a in opened) for kind in sorted({a.type for a in opened})
        },
        "weeks": round(weeks, 3),
    }
    if labels:
        report["labelled_windows"] = detections
        report["detected"] = sum(d["detected"] for d in detections)
        report["false_alerts"] = len(false)
        report["false_alerts_per_week"] = round(len(false) / weeks, 3)
    return report


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _alert_json(a: Alert) -> dict[str, Any]:
    return {
        "time": _iso(a.ts),
        "type": a.type,
        "value": a.value,
        "threshold": a.threshold,
        "device_id": a.device_id,
        "alert_id": a.alert_id,
    }
