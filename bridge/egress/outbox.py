"""What to publish for each Kafka record and each re-published state: the MQTT messages,
the retain decision and the Home Assistant discovery configs a new device needs first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from bridge.egress.alertstate import RetainedBook, StateEntry
from bridge.egress.discovery import Discovery
from bridge.egress.messages import (
    ALERT,
    EVALUATION,
    FORECAST,
    STATE,
    Outgoing,
    alert_message,
    evaluation_message,
    forecast_message,
    parse,
)
from bridge.egress.metrics import EgressMetrics
from bridge.egress.settings import EgressSettings
from iotml.core.errors import RecordError
from iotml.core.evaluations import Evaluation
from iotml.core.records import ALERT_TYPES, Alert, Prediction

__all__ = ["Outbox"]


class Outbox:
    """Single-threaded. ``for_record`` raises :class:`~iotml.core.errors.RecordError` for a
    record that is not what its topic holds."""

    def __init__(
        self, settings: EgressSettings, metrics: EgressMetrics, sw_version: str = "unknown"
    ) -> None:
        self.metrics = metrics
        self.default = settings.egress_tag_default
        self.retain_forecasts = settings.egress_forecast_retain
        self.alert_topic, self.forecast_topic, self.evaluation_topic = settings.templates()
        self.alert_state_topic = settings.topic_alert_state
        self.kinds = {
            settings.topic_alerts: ALERT,
            settings.topic_predictions: FORECAST,
            settings.topic_evaluations: EVALUATION,
        }
        self.book = RetainedBook()
        self.discovery = (
            Discovery(settings.ha_discovery_prefix, settings.ha_node_id, sw_version)
            if settings.ha_discovery
            else None
        )
        self._announced: set[tuple[str, str]] = set()

    def reset_announcements(self) -> None:
        """Announce every device again (the broker may have lost its retained configs)."""
        self._announced.clear()

    def for_record(self, topic: str, raw: bytes | None, now_ms: int) -> list[Outgoing]:
        """The messages for the record ``raw`` read from ``topic``, in publishing order."""
        kind = self.kinds[topic]
        record, tags = parse(kind, raw)
        assert raw is not None
        if isinstance(record, Alert):
            alert = alert_message(record, raw, tags, self.alert_topic, self.default)
            if not self.book.offer(record):  # only once the message exists: it may raise
                self.metrics.not_retained.inc()
                alert = replace(alert, retain=False)
            out = self._announce_alerts(record.device_id, tags)
            out.append(alert)
            return out
        if isinstance(record, Prediction):
            message = forecast_message(
                record,
                raw,
                tags,
                self.forecast_topic,
                self.default,
                now_ms,
                retain=self.retain_forecasts,
            )
            if message is None:
                self.metrics.expired.inc()
                return []
            announce = self._announce_alerts(record.device_id, tags)
            return [*announce, *self._announce_forecast(record, message.topic), message]
        assert isinstance(record, Evaluation)
        return [evaluation_message(record, raw, tags, self.evaluation_topic, self.default)]

    def for_state(self, entry: StateEntry) -> list[Outgoing]:
        """The messages that restore one retained state from the alert-state topic; none if
        a newer event of that device and type is retained already, or if its topic cannot
        be published on (its event went to the dead letters)."""
        try:
            message = alert_message(
                entry.alert, entry.raw, entry.tags, self.alert_topic, self.default, kind=STATE
            )
        except RecordError as exc:
            self.metrics.rejected.labels(self.alert_state_topic, exc.reason).inc()
            return []
        if not self.book.offer(entry.alert):
            return []
        out = self._announce_alerts(entry.alert.device_id, entry.tags)
        out.append(message)
        return out

    def _announce_alerts(self, device_id: str, tags: Mapping[str, str]) -> list[Outgoing]:
        if self.discovery is None or (device_id, "") in self._announced:
            return []
        self._announced.add((device_id, ""))
        values = {"device": device_id}
        return [
            self.discovery.alert_sensor(
                device_id,
                kind,
                self.alert_topic.render({**values, "type": kind}, tags, self.default),
            )
            for kind in ALERT_TYPES
        ]

    def _announce_forecast(self, p: Prediction, state_topic: str) -> list[Outgoing]:
        if self.discovery is None or (p.device_id, p.metric) in self._announced:
            return []
        self._announced.add((p.device_id, p.metric))
        return [self.discovery.forecast_sensor(p.device_id, p.metric, state_topic)]
