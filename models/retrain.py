"""Champion and challenger: ``iotml retrain``'s decision, written into the registry.

A challenger is trained on recent history except its most recent part (the held-out
period), with the champion's feature spec, network shape and alert rule, and published
*without* moving ``LATEST``. Champion (``LATEST``) and challenger are then scored with
:func:`models.evaluation.evaluate` on the same held-out period (earlier readings warm up
the windows). The challenger is promoted only when

* it can replace the champion in running processors (:meth:`Artifact.compatible_with`),
* its MAE is lower than the champion's by at least ``min_improvement`` (a share), and
* it opens no more alerts per device-day.

A champion that is the statistical baseline (``"kind": "persistence"``, a cold start)
has no network shape: the first network is trained with its feature spec and the
training defaults, and is promoted by the same rule, i.e. when it beats persistence.
Until the data suffices each attempt records "too little data" and persistence serves.

Whatever happens — including a challenger that cannot be trained or scored — the
decision (data range, both scores, promoted or not and why) is recorded beside the
versions (:meth:`Registry.record_decision`); nothing here raises for bad data.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from models.errors import ArtifactNotFound, DataError, ModelError
from models.registry import Artifact, Registry, skill
from models.replay import Point
from models.settings import parse_holdout

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
RECORD_FORMAT = 1

#: Readings of one metric over the data range: ``load(metric) -> points``.
Loader = Callable[[str], Sequence[Point]]


@dataclass(frozen=True, slots=True)
class RetrainConfig:
    min_improvement: float = 0.02
    holdout: str = "25%"
    metric: str | None = None  # default: the champion's
    grace_ms: int | None = None  # default: the champion's
    epochs: int = 200
    patience: int = 15
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 42
    threads: int = 2


@dataclass(frozen=True, slots=True)
class Score:
    """One version scored on the held-out period."""

    version: str
    mae: float
    persistence_mae: float
    n: int
    alerts: int  # alerts opened in the period
    device_days: float

    @property
    def skill(self) -> float | None:
        return skill(self.mae, self.persistence_mae)

    @property
    def alerts_per_device_day(self) -> float:
        return self.alerts / self.device_days if self.device_days > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "mae": self.mae,
            "persistence_mae": self.persistence_mae,
            "skill": self.skill,
            "n": self.n,
            "alerts": self.alerts,
            "alerts_per_device_day": self.alerts_per_device_day,
        }


def score(points: Sequence[Point], artifact: Artifact, from_ms: int, grace_ms: int) -> Score:
    """Score ``artifact`` on the forecasts made from ``from_ms`` on."""
    from models.evaluation import evaluate

    result = evaluate(points, artifact, (), from_ms, grace_ms)
    arr = np.asarray([s[1:] for s in result.scored], dtype=np.float64)
    end = max(p[1] for p in points)
    devices = {p[0] for p in points if p[1] >= from_ms}
    return Score(
        version=artifact.version,
        mae=float(np.mean(np.abs(arr[:, 1] - arr[:, 0]))),
        persistence_mae=float(np.mean(np.abs(arr[:, 1] - arr[:, 2]))),
        n=len(arr),
        alerts=len(result.report["alerts"]),
        device_days=len(devices) * max(end - from_ms, 1) / DAY_MS,
    )


def decide(champion: Score, challenger: Score, min_improvement: float) -> tuple[bool, str]:
    """Whether the challenger replaces the champion, and why (pure)."""
    c, m = challenger, champion
    scores = f"challenger {c.version} MAE {c.mae:.4f}, champion {m.version} MAE {m.mae:.4f}"
    if m.mae <= 0:
        return False, f"{scores}: the champion makes no error on the held-out period"
    gain = 1.0 - c.mae / m.mae
    if gain < min_improvement:
        return False, f"{scores}: {gain:+.1%} better, needs {min_improvement:.1%}"
    rates = f"{c.alerts_per_device_day:.3f} vs {m.alerts_per_device_day:.3f} alerts per device-day"
    if c.alerts_per_device_day > m.alerts_per_device_day:
        return False, f"{scores} ({gain:.1%} better) but it opens more alerts: {rates}"
    return True, f"{scores}: {gain:.1%} better (needs {min_improvement:.1%}), {rates}"


def holdout_cut(points: Sequence[Point], holdout: str) -> int:
    """Where the held-out period starts: the last ``holdout`` (share or duration) of the
    points' time range."""
    t0, t1 = min(p[1] for p in points), max(p[1] for p in points)
    share, ms = parse_holdout(holdout)
    cut = t1 - ms if ms is not None else t1 - int((share or 0) * (t1 - t0))
    if cut <= t0:
        raise DataError(
            f"the held-out period ({holdout}) covers all {len(points)} readings "
            f"(a span of {(t1 - t0) / 3_600_000:.1f} h), leaving none to train on. "
            f"Fix: a shorter --holdout or an earlier --start"
        )
    return cut


def retrain(
    registry: Registry,
    name: str,
    load: Loader,
    config: RetrainConfig,
    source: str,
    trigger: str = "manual",
    progress: Callable[[str], None] = log.debug,
) -> dict[str, Any]:
    """Train, score and decide (see the module doc); returns the decision record, which is
    also written into the registry. ``progress`` gets the training's lines."""
    record: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "model": name,
        "trigger": trigger,
        "source": source,
        "holdout": config.holdout,
        "min_improvement": config.min_improvement,
        "data": None,
        "champion": None,
        "challenger": None,
    }
    try:
        promoted, reason = _run(registry, name, load, config, record, progress)
    except Exception as exc:  # an unexpected failure is a decision too, never a crash
        log.exception("retrain of %s failed", name)
        promoted, reason = False, f"retrain failed: {_why(exc)}"
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    record.update(promoted=promoted, reason=reason, decided_at=_iso(now))
    record["file"] = registry.record_decision(name, record).name
    log.info("%s: %s: %s", name, "PROMOTED" if promoted else "not promoted", reason)
    return record


def _run(
    registry: Registry,
    name: str,
    load: Loader,
    config: RetrainConfig,
    record: dict[str, Any],
    progress: Callable[[str], None],
) -> tuple[bool, str]:
    try:
        champion = registry.load(name)
    except ArtifactNotFound:
        return False, f"no champion: nothing published as {name!r} (train one with `iotml train`)"
    except ModelError as exc:
        return False, f"the champion cannot be loaded: {exc}"
    grace = config.grace_ms if config.grace_ms is not None else champion.grace_ms
    cold = champion.kind == "persistence"
    short = "too little data to train the first network (persistence serves meanwhile)"
    try:
        points = list(load(champion.spec.metric))
        if not points:
            raise DataError(f"no readings of {champion.spec.metric}")
        cut = holdout_cut(points, config.holdout)
        record["data"] = _data_range(points, cut)
        champion_score = score(points, champion, cut, grace)
        record["champion"] = {**champion_score.to_dict(), "kind": champion.kind}
    except ModelError as exc:
        return False, f"{short if cold else 'no usable data'}: {exc}"
    metric = config.metric or champion.spec.metric
    try:
        train_points = points if metric == champion.spec.metric else list(load(metric))
        train_points = [p for p in train_points if p[1] < cut]
        version = _train(registry, name, champion, metric, grace, train_points, config, progress)
        challenger = registry.load(name, version)
    except DataError as exc:
        return False, f"{short if cold else 'the challenger could not be trained'}: {exc}"
    except Exception as exc:  # a metric without readings, a broken fit
        return False, f"the challenger could not be trained: {_why(exc)}"
    record["challenger"] = {
        "version": version,
        "kind": challenger.kind,
        "validation": challenger.manifest["validation"],
    }
    # Leaving a persistence champion passes this check: the challenger has its spec, so
    # the running processors swap to the network live and keep their device state.
    why = champion.compatible_with(challenger)
    if why is not None:
        return False, f"challenger {version} cannot replace {champion.version} live: {why}"
    try:
        challenger_score = score(points, challenger, cut, grace)
    except ModelError as exc:
        return False, f"the challenger could not be scored: {exc}"
    record["challenger"].update(challenger_score.to_dict())
    promoted, reason = decide(champion_score, challenger_score, config.min_improvement)
    if promoted:
        latest = registry.latest(name)
        if latest != champion.version:
            return False, f"LATEST moved to {latest} while retraining; {reason}"
        registry.promote(name, version)
    return promoted, reason


def _train(
    registry: Registry,
    name: str,
    champion: Artifact,
    metric: str,
    grace_ms: int,
    points: Sequence[Point],
    config: RetrainConfig,
    progress: Callable[[str], None],
) -> str:
    """Publish a challenger (LATEST untouched) shaped like the champion; its version."""
    from models.thresholds import AlertRule
    from models.training import TrainConfig, train

    if not points:
        raise DataError("no readings before the held-out period")
    training = champion.manifest.get("training") or {}
    rule_fields = {
        k: v
        for k, v in (champion.manifest.get("alert_rule") or {}).items()
        if k in AlertRule.__dataclass_fields__
    }
    train_config = TrainConfig(
        spec=replace(champion.spec, metric=metric),
        epochs=config.epochs,
        batch_size=config.batch_size,
        patience=config.patience,
        learning_rate=config.learning_rate,
        # a persistence champion has no network shape: the training default
        hidden=tuple(int(h) for h in training.get("hidden", TrainConfig.hidden)),
        seed=config.seed,
        grace_ms=grace_ms,
        threads=config.threads,
        rule=AlertRule(**rule_fields),
    )
    t0, t1 = min(p[1] for p in points), max(p[1] for p in points)
    source = f"retrain of {champion.version} on {len(points)} readings {_iso(t0)}..{_iso(t1)}"
    result = train(points, train_config, registry, name, source, progress, promote=False)
    return result.version


def _data_range(points: Sequence[Point], cut: int) -> dict[str, Any]:
    stamps = [p[1] for p in points]
    held = sum(t >= cut for t in stamps)
    return {
        "from": _iso(min(stamps)),
        "to": _iso(max(stamps)),
        "holdout_from": _iso(cut),
        "readings": len(points),
        "train_readings": len(points) - held,
        "holdout_readings": held,
        "devices": len({p[0] for p in points}),
    }


def _why(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")
