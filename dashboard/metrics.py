"""The dashboard's Prometheus metrics, on a per-instance registry (tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["DashboardMetrics"]


class DashboardMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "iotml_dashboard_records_total",
            "Records read from Kafka, by topic.",
            ["topic"],
            registry=r,
        )
        self.rejected = Counter(
            "iotml_dashboard_records_rejected_total",
            "Records skipped because they are not valid records of their topic, by reason.",
            ["topic", "reason"],
            registry=r,
        )
        self.devices = Gauge("iotml_dashboard_devices", "Devices held in memory.", registry=r)
        self.open_alerts = Gauge("iotml_dashboard_open_alerts", "Alerts open now.", registry=r)
        self.clients = Gauge(
            "iotml_dashboard_clients", "Pages connected to the event stream.", registry=r
        )
        self.dropped_clients = Counter(
            "iotml_dashboard_clients_dropped_total",
            "Pages disconnected because they lagged too far behind.",
            registry=r,
        )
        self.pushes = Counter(
            "iotml_dashboard_pushes_total", "Change events pushed to the pages.", registry=r
        )
        self.push_seconds = Histogram(
            "iotml_dashboard_push_seconds",
            "Time to build and encode one change event.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
            registry=r,
        )
