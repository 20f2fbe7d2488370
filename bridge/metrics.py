"""The bridge's Prometheus metrics, in a registry of its own (several bridges per process
in tests). Counters are bumped once per read batch, not per message."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "iotml_bridge_received", "MQTT messages read from the broker.", registry=r
        )
        self.published = Counter(
            "iotml_bridge_published",
            "Readings Kafka confirmed (dead letters are counted separately).",
            registry=r,
        )
        self.acked = Counter(
            "iotml_bridge_acked", "MQTT messages acknowledged after Kafka confirmed.", registry=r
        )
        self.dead_letters = Counter(
            "iotml_bridge_dead_letters",
            "Messages written to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.dead_letters_truncated = Counter(
            "iotml_bridge_dead_letters_truncated",
            "Dead letters whose payload was cut to a prefix to fit in a Kafka record.",
            registry=r,
        )
        self.dead_letters_refused = Counter(
            "iotml_bridge_dead_letters_refused",
            "Dead letters Kafka refused even in their minimal form, by Kafka error: logged at "
            "ERROR with the MQTT topic, and their MQTT message acknowledged without them.",
            ["error"],
            registry=r,
        )
        self.redeliveries = Counter(
            "iotml_bridge_unacked_on_reconnect",
            "Messages Kafka confirmed after their MQTT connection was lost; the broker "
            "redelivers them (duplicates in Kafka, never loss).",
            registry=r,
        )
        self.kafka_retries = Counter(
            "iotml_bridge_kafka_retries",
            "Records produced again after a delivery error.",
            registry=r,
        )
        self.in_flight = Gauge(
            "iotml_bridge_in_flight", "Messages read and not yet acknowledged.", registry=r
        )
        self.mqtt_connected = Gauge(
            "iotml_bridge_mqtt_connected", "1 while connected to the MQTT broker.", registry=r
        )
        self.kafka_connected = Gauge(
            "iotml_bridge_kafka_connected", "1 while a Kafka broker is reachable.", registry=r
        )
        self.latency = Histogram(
            "iotml_bridge_kafka_delivery_seconds",
            "Time from producing a read batch to Kafka confirming all of its records.",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )

    def watch(self, in_flight: Callable[[], float]) -> None:
        self.in_flight.set_function(in_flight)
