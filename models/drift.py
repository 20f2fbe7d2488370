"""Drift detection on scored forecasts: the ``model_degraded`` rule, as pure logic.

For each model version, the live skill is ``1 - sum|actual - forecast| / sum|actual -
persistence|`` over the last ``period_ms`` of event time (the evaluations' target times,
up to the latest one seen for that version) — the same sums the processor exports, so any
period's skill is a ratio of sums. The version whose evaluations are the most recent is the
running one; only its skill decides, against its own validation skill (its manifest). A
shadow version's evaluations (``role`` shadow) give its live skill but never decide.

* ``model_degraded`` **opens** when the running version's live skill, computed over at
  least ``min_scored`` forecasts, stays below ``validation skill - margin`` at every
  evaluation for a whole period;
* it **clears** when the running version's live skill (after a retrain: the new
  version's, against its own validation skill) stays at or above that line for a whole
  period.

One episode per model name: it may open under one version and clear under the next. Feed
it from a single consumer (``iotml retrain --on-drift``), never from each processor
replica.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from iotml.core.evaluations import SHADOW, Evaluation
from iotml.core.model_events import ModelEvent, model_event_id
from models.registry import skill

MODEL_DEGRADED = "model_degraded"

#: ``(model name, version) -> validation skill`` (``None``: unknown, no decision).
SkillLookup = Callable[[str, str], float | None]


@dataclass(frozen=True, slots=True)
class DriftRule:
    period_ms: int = 600_000
    margin: float = 0.1
    min_scored: int = 50

    def __post_init__(self) -> None:
        if self.period_ms <= 0 or self.min_scored < 1 or self.margin < 0:
            raise ValueError("period_ms must be positive, min_scored >= 1 and margin >= 0")


@dataclass(slots=True)
class SlidingSums:
    """Sums of absolute errors over the last ``period_ms`` of event time, bucketed by
    target time (forecasts of epoch-aligned windows share few distinct target times)."""

    period_ms: int
    n: int = 0
    abs_error: float = 0.0
    persistence_error: float = 0.0
    last_ts: int | None = None
    late: int = 0
    _buckets: dict[int, list[float]] = field(default_factory=dict)
    _heap: list[int] = field(default_factory=list)

    def add(self, ts: int, abs_error: float, persistence_error: float) -> bool:
        """Add one scored forecast; ``False`` (and counted as late) when it is older than
        the period behind the latest one."""
        if self.last_ts is not None and ts <= self.last_ts - self.period_ms:
            self.late += 1
            return False
        bucket = self._buckets.get(ts)
        if bucket is None:
            bucket = self._buckets[ts] = [0.0, 0.0, 0.0]
            heapq.heappush(self._heap, ts)
        bucket[0] += 1
        bucket[1] += abs_error
        bucket[2] += persistence_error
        self.n += 1
        self.abs_error += abs_error
        self.persistence_error += persistence_error
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
            self._evict(ts - self.period_ms)
        return True

    def _evict(self, horizon: int) -> None:
        while self._heap and self._heap[0] <= horizon:
            n, err, pers = self._buckets.pop(heapq.heappop(self._heap))
            self.n -= int(n)
            self.abs_error -= err
            self.persistence_error -= pers
        if self.n == 0:  # no float residue once everything left
            self.abs_error = self.persistence_error = 0.0

    def skill(self) -> float | None:
        if self.n == 0:
            return None
        return skill(self.abs_error, self.persistence_error)


@dataclass(slots=True)
class _Episode:
    """The ``model_degraded`` state of one model name."""

    open: bool = False
    event_id: str = ""
    episode_start: int = 0
    version: str | None = None  # the running version the state was last decided on
    changing_since: int | None = None  # the opposite condition holds since (event time)


class DriftDetector:
    """Feed it evaluations in arrival order; it returns the model events to publish."""

    def __init__(self, rule: DriftRule, validation_skill: SkillLookup) -> None:
        self.rule = rule
        self._validation_skill = validation_skill
        self._sums: dict[tuple[str, str], SlidingSums] = {}
        self._live: set[tuple[str, str]] = set()  # versions seen running (not as shadows)
        self._episodes: dict[str, _Episode] = {}

    def restore(self, event: ModelEvent) -> None:
        """Resume from the last published event of a model (at start), so an open episode
        is neither opened twice nor forgotten."""
        self._episodes[event.model_name] = _Episode(
            open=event.event == "open",
            event_id=event.event_id,
            episode_start=event.episode_start,
            version=event.model_version,
        )

    def is_open(self, model_name: str) -> bool:
        episode = self._episodes.get(model_name)
        return episode is not None and episode.open

    def live_skill(self, model_name: str, version: str) -> tuple[float | None, int]:
        """The live skill of a version over the period, and the forecasts it counts."""
        sums = self._sums.get((model_name, version))
        return (None, 0) if sums is None else (sums.skill(), sums.n)

    def observe(self, e: Evaluation) -> ModelEvent | None:
        key = (e.model_name, e.model_version)
        sums = self._sums.get(key)
        if sums is None:
            sums = self._sums[key] = SlidingSums(self.rule.period_ms)
        if not sums.add(e.target_ts, e.abs_error, e.persistence_abs_error):
            return None
        if e.role == SHADOW:
            return None  # a candidate's live skill is evidence for promotion, not drift
        self._live.add(key)
        if key != self._running(e.model_name):
            return None  # a late forecast of a version no longer running
        episode = self._episodes.setdefault(e.model_name, _Episode())
        if episode.version != e.model_version:
            episode.version, episode.changing_since = e.model_version, None
        validation = self._validation_skill(*key)
        live = sums.skill()
        if validation is None or live is None or sums.n < self.rule.min_scored:
            episode.changing_since = None
            return None
        line = validation - self.rule.margin
        changing = live >= line if episode.open else live < line
        now = sums.last_ts
        assert now is not None  # set by add()
        if not changing:
            episode.changing_since = None
            return None
        if episode.changing_since is None:
            episode.changing_since = now
        if now - episode.changing_since < self.rule.period_ms:
            return None
        since, episode.changing_since = episode.changing_since, None
        if episode.open:
            episode.open = False
            detail = f"live skill {live:.3f} back at or above {line:.3f} since {_iso(since)}"
        else:
            episode.open = True
            episode.episode_start = since
            episode.event_id = model_event_id(e.model_name, MODEL_DEGRADED, since)
            detail = f"live skill {live:.3f} below {line:.3f} since {_iso(since)}"
        return ModelEvent(
            event_id=episode.event_id,
            model_name=e.model_name,
            model_version=e.model_version,
            type=MODEL_DEGRADED,
            event="open" if episode.open else "cleared",
            ts=now,
            episode_start=episode.episode_start,
            live_skill=live,
            validation_skill=validation,
            margin=self.rule.margin,
            window_ms=self.rule.period_ms,
            scored=sums.n,
            detail=detail,
        )

    def _running(self, model_name: str) -> tuple[str, str] | None:
        """The version of ``model_name`` with the most recent evaluations (on a tie, the
        one seen first most recently: a version that just started)."""
        best: tuple[str, str] | None = None
        best_ts = -(2**63)
        for key, sums in self._sums.items():
            if key not in self._live or key[0] != model_name:
                continue
            if sums.last_ts is not None and sums.last_ts >= best_ts:
                best, best_ts = key, sums.last_ts
        return best


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
