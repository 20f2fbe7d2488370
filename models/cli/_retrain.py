"""``iotml retrain``: champion and challenger, once, every ``--every``, or on drift.

With ``--on-drift`` this is the one consumer of ``evaluations`` that decides drift
(:mod:`models.drift`): it re-reads the last two drift periods of evaluations at start,
resumes open episodes from ``model-events``, publishes ``model_degraded`` open/cleared
there (key = model name) and retrains when one opens, on the readings since the episode
began. A scheduled retrain is due ``--every`` after the last recorded decision, so a
restart neither skips nor repeats one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import click
from prometheus_client import CollectorRegistry, Counter, Gauge

from iotml.core.errors import ConfigError, RecordError
from iotml.core.evaluations import Evaluation
from iotml.core.logs import setup_logging
from iotml.core.model_events import ModelEvent
from iotml.core.options import build_settings, settings_options
from models.errors import ModelError
from models.registry import Registry, validation_skill
from models.settings import RetrainSettings

log = logging.getLogger(__name__)

#: Settings passed to :class:`models.retrain.RetrainConfig` under the same name.
_SAME = "min_improvement holdout metric epochs patience batch_size learning_rate seed threads"


@click.command()
@settings_options(RetrainSettings)
def retrain(**kwargs: Any) -> None:
    """Train a challenger on recent history and promote it only when it beats LATEST.

    Holds out the most recent --holdout of the data, trains the challenger on the rest
    (the champion's features, network shape and alert rule), scores both on the held-out
    period like `iotml evaluate`, and promotes the challenger when its MAE is lower by
    --min-improvement and it opens no more alerts per device-day. Every decision is
    written to <registry>/<name>/decisions/ (`iotml models show` lists them) and printed
    as JSON. --every and --on-drift keep it running as a service. From the persistence
    baseline (`iotml train --baseline persistence`) it trains the first network.
    """
    s = build_settings(RetrainSettings, kwargs)
    setup_logging(s.log_level)
    service = RetrainService(s)
    if not s.every and not s.on_drift:
        click.echo(json.dumps(service.retrain_once("manual"), sort_keys=True))
        return
    service.run()


class RetrainService:
    def __init__(self, settings: RetrainSettings) -> None:
        self.s = settings
        self.registry = Registry(settings.model_registry)
        m = self.metrics = CollectorRegistry()
        self._decisions = Counter(
            "iotml_retrain_decisions", "Retrain decisions", ["promoted"], registry=m
        )
        self._events = Counter(
            "iotml_retrain_model_events", "Model events published", ["type", "event"], registry=m
        )
        self._rejected = Counter(
            "iotml_retrain_rejected_evaluations",
            "Unreadable evaluation records, per reason",
            ["reason"],
            registry=m,
        )
        self._skill = Gauge(
            "iotml_retrain_live_skill",
            "Live skill over the drift period, per version",
            ["model", "version"],
            registry=m,
        )
        self._stop = threading.Event()
        self._ready = False
        self._skills: dict[tuple[str, str], float | None] = {}
        self._next_due = self._first_due()
        self._range()  # a bad --start/--end fails now, not at the first retrain

    # -- one retrain ---------------------------------------------------------------------

    def _range(self) -> tuple[int | None, int | None]:
        from models.evaluation import parse_time

        now = time.time_ns() // 1_000_000
        start = parse_time(self.s.start, now) if self.s.start else None
        end = parse_time(self.s.end, now) if self.s.end else None
        return start, end

    def retrain_once(self, trigger: str, since_ms: int | None = None) -> dict[str, Any]:
        """Retrain on the configured range (from ``since_ms`` at the earliest)."""
        from models.retrain import RetrainConfig
        from models.retrain import retrain as run_retrain
        from models.sources import KAFKA_SCHEME, load_points

        s = self.s
        start, end = self._range()
        if since_ms is not None:
            start = since_ms if start is None else max(start, since_ms)
        kafka = s.kafka_config() if s.input.startswith(KAFKA_SCHEME) else None

        def load(metric: str) -> list[tuple[str, int, float]]:
            return load_points(s.input, metric, None, kafka, start_ms=start, end_ms=end)

        config = RetrainConfig(
            grace_ms=s.grace, **{name: getattr(s, name) for name in _SAME.split()}
        )
        source = f"{s.input} [{_iso(start)}, {_iso(end)})"
        log.info("retraining %s (%s) on %s", s.model_name, trigger, source)
        record = run_retrain(self.registry, s.model_name, load, config, source, trigger)
        self._decisions.labels(str(record["promoted"]).lower()).inc()
        if s.every:
            self._next_due = time.time() + s.every / 1000
        return record

    # -- the service ----------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        return (True, "running") if self._ready else (False, "starting")

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        from iotml.core.http import HealthServer

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        s = self.s
        health = None
        if s.http_port:
            health = HealthServer(self.metrics, self.ready, s.http_host, s.http_port).start()
        try:
            if s.on_drift:
                self._drift_loop()
            else:
                self._ready = True
                while not self._stop.wait(max(0.0, min(self._next_due - time.time(), 60.0))):
                    self._maybe_scheduled()
        finally:
            if health is not None:
                health.stop()

    def _first_due(self) -> float:
        """Wall time (s) of the first scheduled retrain: ``--every`` after the last recorded
        decision (now if there is none); never without ``--every``."""
        if not self.s.every:
            return float("inf")
        latest = self.registry.decisions(self.s.model_name, limit=1)
        try:
            last = dt.datetime.fromisoformat(latest[0]["decided_at"]).timestamp()
        except (IndexError, KeyError, TypeError, ValueError):
            return time.time()
        return last + self.s.every / 1000

    def _maybe_scheduled(self) -> None:
        if time.time() >= self._next_due:
            self.retrain_once("schedule")

    def _drift_loop(self) -> None:
        from confluent_kafka import Consumer, Producer

        from models.drift import DriftDetector, DriftRule

        s = self.s
        conf = s.kafka_config()
        _check_topics(conf, [s.topic_evaluations, s.topic_model_events])
        rule = DriftRule(s.drift_period, s.drift_margin, s.drift_min_scored)
        detector = DriftDetector(rule, self._validation_skill)
        for event in _last_events(conf, s.topic_model_events):
            detector.restore(event)
            log.info("resumed %s %s of %s", event.type, event.event, event.model_name)
        consumer = Consumer({**conf, "group.id": "iotml-retrain", "enable.auto.commit": False})
        producer = Producer({**conf, "acks": "all", "enable.idempotence": True})
        try:
            since = time.time_ns() // 1_000_000 - 2 * rule.period_ms
            consumer.assign(_partitions_at(consumer, s.topic_evaluations, since))
            self._ready = True
            log.info("detecting drift of %s on %s", s.model_name, s.topic_evaluations)
            while not self._stop.is_set():
                opened: ModelEvent | None = None
                for msg in consumer.consume(500, 1.0):
                    if msg.error():
                        continue
                    try:
                        e = Evaluation.from_json(msg.value() or b"")
                    except RecordError as exc:
                        self._rejected.labels(exc.reason).inc()
                        log.warning("unreadable evaluation at offset %s: %s", msg.offset(), exc)
                        continue
                    if e.model_name != s.model_name:
                        continue
                    change = detector.observe(e)
                    live, _ = detector.live_skill(e.model_name, e.model_version)
                    if live is not None:
                        self._skill.labels(e.model_name, e.model_version).set(live)
                    if change is not None:
                        self._publish(producer, change)
                        opened = change if change.event == "open" else opened
                if opened is not None:
                    self.retrain_once(f"model_degraded {opened.event_id}", opened.episode_start)
                self._maybe_scheduled()
        finally:
            consumer.close()
            producer.flush(30)

    def _publish(self, producer: Any, event: ModelEvent) -> None:
        producer.produce(
            self.s.topic_model_events, event.to_json(), event.model_name, timestamp=event.ts
        )
        if producer.flush(30) != 0:
            raise ModelError(f"model event {event.event_id} not delivered to Kafka")
        self._events.labels(event.type, event.event).inc()
        level = logging.WARNING if event.event == "open" else logging.INFO
        log.log(level, "%s %s: %s %s", event.type, event.event, event.model_version, event.detail)

    def _validation_skill(self, name: str, version: str) -> float | None:
        key = (name, version)
        if key not in self._skills:
            try:
                self._skills[key] = validation_skill(self.registry.manifest(name, version))
            except ModelError as exc:
                log.warning("no validation skill for %s %s: %s", name, version, exc)
                self._skills[key] = None
        return self._skills[key]


def _check_topics(conf: dict[str, Any], topics: list[str]) -> None:
    from iotml.core.kafka_connect import KafkaUnreachable, cluster_metadata

    try:
        _, md = cluster_metadata(conf)
    except KafkaUnreachable as exc:
        raise ConfigError(str(exc)) from None
    missing = [t for t in topics if t not in md.topics]
    if missing:
        raise ConfigError(
            f"topics missing: {', '.join(missing)}; create them with `iotml topics ensure`"
        )


def _partitions_at(consumer: Any, topic: str, since_ms: int) -> list[Any]:
    """Every partition of ``topic`` at its first record stamped at/after ``since_ms``
    (the end when there is none)."""
    from confluent_kafka import OFFSET_END, TopicPartition

    parts = sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
    found = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in parts], 30)
    return [
        TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
        for tp in found
    ]


def _last_events(conf: dict[str, Any], topic: str, timeout: float = 30.0) -> Iterator[ModelEvent]:
    """The last readable event of each model name in ``topic`` (read to its end)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**conf, "group.id": "iotml-retrain-resume", "enable.auto.commit": False})
    last: dict[str, ModelEvent] = {}
    try:
        parts = sorted(consumer.list_topics(topic, timeout=timeout).topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout)[1] for p in parts
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in parts if ends[p] > 0])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(ends.values()):
            for msg in consumer.consume(500, 0.5):
                if msg.error():
                    continue
                try:
                    event = ModelEvent.from_json(msg.value() or b"")
                    last[event.model_name] = event
                except RecordError as exc:
                    log.warning("unreadable model event at offset %s: %s", msg.offset(), exc)
            positions = consumer.position([TopicPartition(topic, p) for p in parts if ends[p]])
            if all(tp.offset >= ends[tp.partition] for tp in positions):
                break
    finally:
        consumer.close()
    yield from last.values()


def _iso(ms: int | None) -> str:
    if ms is None:
        return "..."
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
