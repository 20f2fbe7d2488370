"""Wiring: the quixstreams application around :class:`processor.core.Engine`, the model
watcher, heartbeats and the health/metrics endpoint.

The dataframe is one stateful ``apply`` (the engine) whose outputs are routed by role to
the predictions, alerts and dead-letter topics, so under exactly-once they commit in the
same Kafka transaction as the state changes and input offsets.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from iotml.core.errors import ConfigError
from iotml.core.http import HealthServer
from processor.core import ALERT_STATE, ALERTS, DLQ, EVALUATIONS, PREDICTIONS, Engine, Output
from processor.heartbeat import Heartbeats
from processor.metrics import Metrics
from processor.model import ModelHolder
from processor.settings import ProcessorSettings
from processor.shadow import ShadowHolder

log = logging.getLogger(__name__)


def _partition_key_deserializer() -> Any:
    from quixstreams.models.serializers import Deserializer

    class PartitionKey(Deserializer):
        """Every record of a partition gets the same key, so a record's ``State`` is the
        whole partition's store (see :mod:`processor.core`)."""

        def __call__(self, value: bytes, ctx: Any) -> Any:
            return "partition"

    return PartitionKey()


def _output_serializer() -> Any:
    from quixstreams.models.serializers import Serializer

    class OutputValue(Serializer):
        def __call__(self, value: Output, ctx: Any) -> bytes:
            return value.value

    return OutputValue()


def check_topics(settings: ProcessorSettings) -> None:
    """Fail clearly when a topic is missing (quixstreams would auto-create it with one
    partition, which replicas cannot share)."""
    from iotml.core.kafka_connect import cluster_metadata

    _, md = cluster_metadata(settings.kafka_config())  # KafkaUnreachable says why not
    wanted = [
        settings.topic_readings,
        settings.topic_predictions,
        settings.topic_alerts,
        settings.topic_alert_state,
        settings.topic_evaluations,
        settings.topic_processor_dlq,
    ]
    missing = [t for t in wanted if t not in md.topics]
    if missing:
        raise ConfigError(
            f"topics missing: {', '.join(missing)}; create them with `iotml topics ensure`"
        )


class Processor:
    """One processor instance (``run`` blocks until SIGTERM/SIGINT or :meth:`stop`)."""

    def __init__(
        self,
        settings: ProcessorSettings,
        metrics: Metrics | None = None,
        holder: ModelHolder | None = None,
        model_stage: bool = True,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.holder = holder or ModelHolder(
            settings.model_registry, settings.model_name, self.metrics, settings.silence_timeout
        )
        self.shadow: ShadowHolder | None = None
        if settings.shadow_version:
            self.shadow = ShadowHolder(
                settings.model_registry, settings.model_name, settings.shadow_version, self.metrics
            )
        self.engine = Engine(
            lambda: self.holder.current,
            self.metrics,
            grace_ms=settings.grace,
            idle_ms=settings.idle_timeout,
            event_range=settings.event_range(),
            model_stage=model_stage,
            ttl_ms=settings.device_ttl,
            scoring=settings.live_scoring,
            shadow=lambda: self.shadow.current if self.shadow is not None else None,
        )
        self._stopping = threading.Event()
        self._app: Any = None
        self._running = False

    def ready(self) -> tuple[bool, str]:
        ok, why = self.holder.ready()
        if not ok:
            return False, why
        if not self._running:
            return False, "starting"
        return True, why

    def stop(self) -> None:
        self._stopping.set()
        if self._app is not None:
            self._app.stop()

    def build(self) -> Any:
        from quixstreams import Application, message_context
        from quixstreams.kafka.configuration import ConnectionConfig
        from quixstreams.state.rocksdb import RocksDBOptions

        s = self.settings
        app = Application(
            broker_address=ConnectionConfig.from_librdkafka_dict(s.kafka_config()),
            consumer_group=s.consumer_group,
            auto_offset_reset=s.auto_offset_reset,
            commit_interval=s.commit_interval / 1000.0,
            state_dir=s.state_dir,
            rocksdb_options=RocksDBOptions(
                block_cache_size=s.state_cache_mb << 20,
                write_buffer_size=s.state_write_buffer_mb << 20,
            ),
            processing_guarantee=s.processing_guarantee,
            loglevel=None,
            producer_extra_config={
                "linger.ms": 5,
                "transaction.timeout.ms": s.transaction_timeout,
            },
            consumer_extra_config={
                "session.timeout.ms": s.session_timeout,
                "heartbeat.interval.ms": max(min(3000, s.session_timeout // 3), 100),
            },
            consumer_poll_timeout=0.2,
        )
        readings = app.topic(
            s.topic_readings,
            value_deserializer="bytes",
            key_deserializer=_partition_key_deserializer(),
        )
        outputs = {
            role: app.topic(name, value_serializer=_output_serializer(), key_serializer="string")
            for role, name in (
                (PREDICTIONS, s.topic_predictions),
                (ALERTS, s.topic_alerts),
                (ALERT_STATE, s.topic_alert_state),
                (EVALUATIONS, s.topic_evaluations),
                (DLQ, s.topic_processor_dlq),
            )
        }
        engine = self.engine

        def process(value: Any, key: Any, timestamp: int, headers: Any, state: Any) -> Any:
            ctx = message_context()
            return engine.process(
                value, headers, timestamp, ctx.topic, ctx.partition, ctx.offset, state
            )

        sdf = app.dataframe(readings)
        sdf = sdf.apply(process, stateful=True, expand=True, metadata=True)
        sdf = sdf.set_timestamp(lambda v, k, t, hd: v.timestamp)
        sdf = sdf.set_headers(lambda v, k, t, hd: v.headers)
        sdf.to_topic(lambda v, k, t, hd: outputs[v.topic], key=lambda v: v.key)
        self._app = app
        return app

    def wait_for_model(self) -> bool:
        """Poll the registry until a usable model is there; False if stopped first."""
        interval = self.settings.reload_interval / 1000.0
        while self.holder.poll() is None:
            if self._stopping.wait(interval):
                return False
        return True

    def _start_shadow(self) -> None:
        """Load the shadow beside the live model (a ConfigError when it cannot run there)."""
        live = self.holder.current
        if self.shadow is None or live is None:
            return
        self.shadow.load(live)
        self.shadow.start(self.settings.reload_interval / 1000.0, lambda: self.holder.current)

    def run(self) -> None:
        s = self.settings
        http = None
        if s.http_port:
            http = HealthServer(self.metrics.registry, self.ready, s.http_host, s.http_port)
            http.start()
        previous = {
            sig: signal.signal(sig, lambda *_: self._stopping.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        heartbeats: Heartbeats | None = None
        try:
            check_topics(s)
            if not self.wait_for_model():
                return
            self._start_shadow()
            self.holder.start(s.reload_interval / 1000.0)
            app = self.build()
            heartbeats = Heartbeats(
                s.kafka_config(),
                s.topic_readings,
                self.engine.clocks,
                s.heartbeat_interval,
                self.metrics,
            )
            heartbeats.start()
            if self._stopping.is_set():
                return
            self._running = True
            self.metrics.ready.set(1)
            log.info(
                "processing %s -> %s, %s (%s, commit every %d ms, group %s)",
                s.topic_readings,
                s.topic_predictions,
                s.topic_alerts,
                s.processing_guarantee,
                s.commit_interval,
                s.consumer_group,
            )
            app.run()  # installs its own SIGTERM/SIGINT handlers: graceful stop + commit
        finally:
            self._running = False
            self.metrics.ready.set(0)
            if heartbeats is not None:
                heartbeats.stop()
            self.holder.stop()
            if self.shadow is not None:
                self.shadow.stop()
            if http is not None:
                http.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            log.info("processor stopped")
