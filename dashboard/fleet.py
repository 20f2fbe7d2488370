"""The fleet as the page shows it: bounded per-device buffers, the open alerts, and the
changes since the last push.

Pure state, no I/O: the Kafka intake feeds records in, the web app takes snapshots,
device views and deltas out. Not thread-safe; the service holds one lock around it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from dashboard.buffers import DeviceBuffer, Point
from iotml.core.evaluations import LIVE, Evaluation
from iotml.core.records import Alert, Prediction

__all__ = ["FleetState", "alert_json"]

#: (alert_id, event) pairs remembered to drop repeats (at-least-once delivery).
_SEEN_KEPT = 50_000


def _order(a: Alert) -> tuple[int, int]:
    """Which of two events of one device and type is newer: event time, then a clear
    after an open of the same instant."""
    return a.ts, 1 if a.event == "cleared" else 0


def alert_json(a: Alert) -> dict[str, Any]:
    return {
        "id": a.alert_id,
        "device": a.device_id,
        "type": a.type,
        "event": a.event,
        "ts": a.ts,
        "start": a.episode_start,
        "value": a.value,
        "threshold": a.threshold,
        "message": a.message,
    }


class FleetState:
    def __init__(self, max_points: int, max_devices: int, spark_points: int = 60) -> None:
        self.max_points = max_points
        self.max_devices = max_devices
        self.spark_points = spark_points
        self._devices: OrderedDict[str, DeviceBuffer] = OrderedDict()  # least recent first
        self._latest: dict[str, Alert] = {}  # "<device>/<type>" -> newest event
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._new_points: dict[str, list[Point]] = {}
        self._touched: set[str] = set()
        self._alert_events: list[dict[str, Any]] = []
        self._sent: dict[str, int] = {}
        self.evicted = 0

    # ---- records in ----

    def _device(self, device_id: str) -> DeviceBuffer:
        buf = self._devices.get(device_id)
        if buf is None:
            if len(self._devices) >= self.max_devices:
                self._forget_oldest()
            buf = self._devices[device_id] = DeviceBuffer(device_id, self.max_points)
        else:
            self._devices.move_to_end(device_id)
        self._touched.add(device_id)
        return buf

    def _forget_oldest(self) -> None:
        gone, _ = self._devices.popitem(last=False)
        for key in [k for k, a in self._latest.items() if a.device_id == gone]:
            del self._latest[key]
        self._new_points.pop(gone, None)
        self._touched.discard(gone)
        self.evicted += 1

    def add_prediction(self, p: Prediction, sent_at: int | None = None) -> bool:
        """Add a forecast; ``False`` for a repeat. ``sent_at`` (epoch ms, from the
        producer's trace header) is passed on to the browsers to measure delays."""
        point = self._device(p.device_id).add_prediction(p)
        if point is None:
            return False
        self._new_points.setdefault(p.device_id, []).append(point)
        if sent_at is not None:
            self._sent[p.device_id] = sent_at
        return True

    def add_evaluation(self, e: Evaluation) -> None:
        if e.role != LIVE:
            return  # a shadow version's score: the page shows the published model's
        self._device(e.device_id).add_evaluation(e)

    def add_alert(self, a: Alert) -> bool:
        """Apply an alert event; ``False`` for a repeat of an event already applied."""
        seen = (a.alert_id, a.event)
        if seen in self._seen:
            return False
        self._seen[seen] = None
        if len(self._seen) > _SEEN_KEPT:
            self._seen.popitem(last=False)
        self._device(a.device_id).add_alert(a)
        key = f"{a.device_id}/{a.type}"
        current = self._latest.get(key)
        if current is None or _order(a) >= _order(current):
            self._latest[key] = a
        self._alert_events.append(alert_json(a))
        return True

    def load_alert_state(self, alerts: list[Alert]) -> None:
        """The compacted alert-state topic as read at start: the newest event per device
        and type (open alerts then show although they opened before the history read)."""
        for a in sorted(alerts, key=_order):
            self.add_alert(a)

    # ---- views out ----

    @property
    def device_count(self) -> int:
        return len(self._devices)

    def open_alerts(self) -> list[Alert]:
        return [a for a in self._latest.values() if a.event == "open"]

    def _open_types(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for a in self.open_alerts():
            out.setdefault(a.device_id, []).append(a.type)
        return out

    def _summary(self, buf: DeviceBuffer, open_types: list[str]) -> dict[str, Any]:
        last = buf.points[-1] if buf.points else None
        return {
            "id": buf.device_id,
            "t": last[0] if last else None,
            "last": last[1] if last else None,
            "tt": last[2] if last else None,
            "fc": last[3] if last else None,
            "err": buf.recent_error,
            "skill": buf.skill,
            "open": sorted(open_types),
            "mv": buf.model_version,
            "metric": buf.metric,
            "h": buf.horizon_ms,
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs to draw the fleet view from scratch."""
        open_types = self._open_types()
        devices = []
        for buf in self._devices.values():
            row = self._summary(buf, open_types.get(buf.device_id, []))
            row["spark"] = buf.sparkline(self.spark_points)
            devices.append(row)
        return {
            "meta": {"max_points": self.max_points, "spark": self.spark_points},
            "devices": devices,
            "alerts": [alert_json(a) for a in self.open_alerts()],
        }

    def device(self, device_id: str) -> dict[str, Any] | None:
        """One device's whole buffer (the device view starts from it)."""
        buf = self._devices.get(device_id)
        if buf is None:
            return None
        row = self._summary(buf, self._open_types().get(device_id, []))
        row["points"] = [list(p) for p in buf.points]
        row["episodes"] = [ep.to_json() for ep in buf.episodes]
        return row

    def take_delta(self) -> dict[str, Any] | None:
        """What changed since the last call (``None``: nothing): the touched devices'
        summaries, their new points, the alert events, and the trace times."""
        if not self._touched and not self._alert_events:
            return None
        open_types = self._open_types()
        devices = [
            self._summary(self._devices[d], open_types.get(d, []))
            for d in self._touched
            if d in self._devices
        ]
        delta: dict[str, Any] = {
            "devices": devices,
            "points": {d: [list(p) for p in pts] for d, pts in self._new_points.items()},
            "alerts": self._alert_events,
        }
        if self._sent:
            delta["sent"] = self._sent
        self._touched, self._new_points, self._alert_events, self._sent = set(), {}, [], {}
        return delta
