"""The Prometheus metrics of ``iotml egress``, in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["EgressMetrics"]


class EgressMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "iotml_egress_consumed", "Kafka records read, by topic.", ["topic"], registry=r
        )
        self.published = Counter(
            "iotml_egress_published",
            "MQTT messages published at QoS 1, by kind (alert, forecast, evaluation, state: "
            "re-published from the alert-state topic, discovery).",
            ["kind"],
            registry=r,
        )
        self.acked = Counter(
            "iotml_egress_acked", "MQTT messages the broker acknowledged (PUBACK).", registry=r
        )
        self.refused = Counter(
            "iotml_egress_refused",
            "MQTT messages the broker refused in its PUBACK (MQTT 5 reason code >= 0x80, "
            "e.g. not authorized), by reason; logged at ERROR and not published again.",
            ["reason"],
            registry=r,
        )
        self.rejected = Counter(
            "iotml_egress_rejected",
            "Records of the alert-state topic that are not alert events, by topic and "
            "reason; logged at WARNING and skipped by the rebuild.",
            ["topic", "reason"],
            registry=r,
        )
        self.dead_letters = Counter(
            "iotml_egress_dead_letters",
            "Records egress could not publish, written to the egress dead-letter topic, by "
            "reason (invalid_json, wrong_type, bad_mqtt_topic, mqtt_refused, ...).",
            ["reason"],
            registry=r,
        )
        self.dead_letters_truncated = Counter(
            "iotml_egress_dead_letters_truncated",
            "Dead letters whose record value was cut to a prefix to fit in Kafka.",
            registry=r,
        )
        self.dead_letters_lost = Counter(
            "iotml_egress_dead_letters_lost",
            "Dead letters Kafka refused even without the record's value (logged at ERROR).",
            registry=r,
        )
        self.other_instance = Gauge(
            "iotml_egress_other_instance",
            "1 while another egress instance runs with the same consumer group (a deployment "
            "error: egress must run as a single instance; logged at ERROR every minute).",
            registry=r,
        )
        self.expired = Counter(
            "iotml_egress_forecasts_expired",
            "Forecasts not published because their target time had passed (a backlog).",
            registry=r,
        )
        self.not_retained = Counter(
            "iotml_egress_alerts_not_retained",
            "Alert events published without the retain flag because a newer event of the "
            "same device and type is retained (a replay, or a backlog behind a rebuild).",
            registry=r,
        )
        self.rebuilds = Counter(
            "iotml_egress_state_rebuilds",
            "Retained alert states rebuilt from the alert-state topic (at start and after "
            "each MQTT reconnection).",
            registry=r,
        )
        self.commits = Counter(
            "iotml_egress_commits", "Kafka offset commits confirmed.", registry=r
        )
        self.in_flight = Gauge(
            "iotml_egress_in_flight",
            "MQTT messages published and not yet acknowledged.",
            registry=r,
        )
        self.open_alerts = Gauge(
            "iotml_egress_open_alerts",
            "Open alerts in the last alert-state snapshot.",
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "iotml_egress_mqtt_connected", "1 while connected to the MQTT broker.", registry=r
        )
        self.kafka_connected = Gauge(
            "iotml_egress_kafka_connected", "1 while a Kafka broker is reachable.", registry=r
        )

    def watch(self, in_flight: Callable[[], float]) -> None:
        self.in_flight.set_function(in_flight)
