"""The processor's Prometheus metrics, on a per-instance registry (tests run several)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from iotml.core.evaluations import Evaluation


class Metrics:
    """Counters and gauges of one processor instance."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._score_children: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
        self.records_in = Counter(
            "iotml_processor_records_in_total",
            "Records consumed from the readings topic, by kind.",
            ["kind"],  # reading | heartbeat | invalid
            registry=r,
        )
        self.missing_metric = Counter(
            "iotml_processor_readings_without_metric_total",
            "Valid readings that carry none of the model's metric (counted, not dead-lettered).",
            registry=r,
        )
        self.windows_closed = Counter(
            "iotml_processor_windows_closed_total",
            "Per-device windows closed, by what closed them.",
            ["by"],  # reading | clock
            registry=r,
        )
        self.predictions = Counter(
            "iotml_processor_predictions_total", "Prediction records produced.", registry=r
        )
        self.alerts = Counter(
            "iotml_processor_alerts_total",
            "Alert events produced, by type and event.",
            ["type", "event"],
            registry=r,
        )
        self.dlq = Counter(
            "iotml_processor_dlq_total",
            "Records sent to the processor dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.inference_seconds = Histogram(
            "iotml_processor_inference_seconds",
            "Wall time of one batched model call.",
            buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0),
            registry=r,
        )
        self.inference_rows = Histogram(
            "iotml_processor_inference_batch_rows",
            "Feature rows per model call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=r,
        )
        # Sums and counts add up across replicas: the MAE and skill over any period are
        # increase(abs_error) / increase(scored), 1 - that / the persistence one.
        self.scored = Counter(
            "iotml_processor_forecasts_scored",
            "Forecasts scored against their actual when the target window closed.",
            ["model", "version"],
            registry=r,
        )
        self.abs_error = Counter(
            "iotml_processor_forecast_abs_error",
            "Sum of the absolute errors of the scored forecasts.",
            ["model", "version"],
            registry=r,
        )
        self.persistence_abs_error = Counter(
            "iotml_processor_persistence_abs_error",
            "Sum of the absolute errors of persistence (the last value) on the same targets.",
            ["model", "version"],
            registry=r,
        )
        self.devices_cached = Gauge(
            "iotml_processor_devices_cached",
            "Device states held in memory (devices sending; quiet ones are evicted).",
            registry=r,
        )
        self.devices_forgotten = Counter(
            "iotml_processor_devices_forgotten_total",
            "Devices forgotten after their time-to-live (state deleted).",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "iotml_processor_consumer_lag",
            "Records in the partition not yet processed by this instance.",
            ["partition"],
            registry=r,
        )
        self.heartbeats_sent = Counter(
            "iotml_processor_heartbeats_sent_total",
            "Heartbeat records written into idle input partitions, by kind.",
            ["kind"],  # advance | probe
            registry=r,
        )
        self.model_info = Gauge(
            "iotml_processor_model_info",
            "1 for the model version in use.",
            ["name", "version"],
            registry=r,
        )
        self.shadow_info = Gauge(
            "iotml_processor_shadow_model_info",
            "1 for the shadow version scored beside the live one (IOTML_SHADOW_VERSION).",
            ["name", "version"],
            registry=r,
        )
        self.model_reloads = Counter(
            "iotml_processor_model_reloads_total",
            "Model version changes seen, by result.",
            ["result"],  # loaded | swapped | incompatible | broken
            registry=r,
        )
        self.ready = Gauge(
            "iotml_processor_ready", "1 when a model is loaded and processing runs.", registry=r
        )

    def observe_score(self, model: str, version: str, e: Evaluation) -> None:
        """Count one scored forecast (children looked up once per model version)."""
        children = self._score_children.get((model, version))
        if children is None:
            children = (
                self.scored.labels(model, version),
                self.abs_error.labels(model, version),
                self.persistence_abs_error.labels(model, version),
            )
            self._score_children[(model, version)] = children
        children[0].inc()
        children[1].inc(e.abs_error)
        children[2].inc(e.persistence_abs_error)
