"""One device's bounded history: forecasts, their scores and its alert episodes.

Everything here is bounded by construction (``deque(maxlen=...)``), so a device costs at
most a fixed amount of memory however long the service runs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import islice

from iotml.core.evaluations import Evaluation
from iotml.core.records import Alert, Prediction

__all__ = ["EPISODES_KEPT", "SCORES_KEPT", "DeviceBuffer", "Episode", "Point"]

#: Scored forecasts behind a device's recent error and live skill.
SCORES_KEPT = 60
#: Alert episodes kept per device for the chart's shading.
EPISODES_KEPT = 32

#: ``(window_end, actual, target_ts, forecast)``: the last value a forecast was made from,
#: at the end of its window, and the forecast for its target time (epoch ms).
Point = tuple[int, float, int, float]


@dataclass(slots=True)
class Episode:
    """One alert episode of a device: ``end`` is ``None`` while it is open."""

    alert_id: str
    type: str
    start: int
    end: int | None

    def to_json(self) -> list[object]:
        return [self.start, self.end, self.type, self.alert_id]


class DeviceBuffer:
    """The latest ``max_points`` forecasts of one device and what is known about them."""

    __slots__ = (
        "_pending",
        "_scores",
        "device_id",
        "episodes",
        "horizon_ms",
        "metric",
        "model_version",
        "points",
        "scored_by_processor",
    )

    def __init__(self, device_id: str, max_points: int) -> None:
        self.device_id = device_id
        self.points: deque[Point] = deque(maxlen=max_points)
        self.episodes: deque[Episode] = deque(maxlen=EPISODES_KEPT)
        self.metric = ""
        self.model_version = ""
        self.horizon_ms = 0
        # (model's absolute error, persistence's absolute error) of recent forecasts
        self._scores: deque[tuple[float, float]] = deque(maxlen=SCORES_KEPT)
        # forecasts awaiting their actual, in target order; used while no evaluations come
        self._pending: deque[tuple[int, float, float]] = deque(maxlen=max_points)
        self.scored_by_processor = False

    def add_prediction(self, p: Prediction) -> Point | None:
        """Append ``p``; the new point, or ``None`` for a repeat or an out-of-order record
        (at-least-once delivery may repeat a forecast)."""
        if self.points and p.window_end <= self.points[-1][0]:
            return None
        point: Point = (p.window_end, p.last_value, p.target_ts, p.forecast)
        self.points.append(point)
        self.metric, self.model_version, self.horizon_ms = p.metric, p.model_version, p.horizon_ms
        if not self.scored_by_processor:
            self._score_from_predictions(p)
        return point

    def _score_from_predictions(self, p: Prediction) -> None:
        """Score earlier forecasts whose target is this window's end, as the processor's
        evaluations would (actual: the target window's last value; persistence: the last
        value the forecast was made from)."""
        pending = self._pending
        while pending and pending[0][0] < p.window_end:
            pending.popleft()
        if pending and pending[0][0] == p.window_end:
            _, forecast, persistence = pending.popleft()
            self._scores.append((abs(p.last_value - forecast), abs(p.last_value - persistence)))
        pending.append((p.target_ts, p.forecast, p.last_value))

    def add_evaluation(self, e: Evaluation) -> None:
        if not self.scored_by_processor:
            # the processor's scores replace the ones derived here
            self.scored_by_processor = True
            self._scores.clear()
            self._pending.clear()
        self._scores.append((e.abs_error, e.persistence_abs_error))
        self.model_version = self.model_version or e.model_version

    def add_alert(self, a: Alert) -> None:
        """Open or close the episode of ``a`` (events of one episode share its id)."""
        for ep in reversed(self.episodes):
            if ep.alert_id == a.alert_id:
                if a.event == "cleared":
                    ep.end = a.ts
                return
        self.episodes.append(
            Episode(a.alert_id, a.type, a.episode_start, a.ts if a.event == "cleared" else None)
        )

    @property
    def recent_error(self) -> float | None:
        """Mean absolute error of the recent scored forecasts."""
        if not self._scores:
            return None
        return sum(s[0] for s in self._scores) / len(self._scores)

    @property
    def skill(self) -> float | None:
        """1 - MAE(model) / MAE(persistence) over the recent scored forecasts: above 0 the
        model beats repeating the last value."""
        persistence = sum(s[1] for s in self._scores)
        if not self._scores or persistence <= 0:
            return None
        return 1.0 - sum(s[0] for s in self._scores) / persistence

    def sparkline(self, n: int) -> list[float]:
        """The last ``n`` actual values."""
        latest = [p[1] for p in islice(reversed(self.points), n)]
        latest.reverse()
        return latest
