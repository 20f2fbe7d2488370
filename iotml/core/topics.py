"""The one topic spec of iotml and ``ensure_topics``, used by the stack, tests, demo and compose,
and ``cluster_metadata``, the connectivity check that says why Kafka cannot be reached.

Nothing relies on broker auto-creation: it makes one-partition topics that processor
replicas cannot share.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from iotml.core.durations import parse_duration_ms as D
from iotml.core.errors import IotmlError
from iotml.core.kafka_connect import cluster_metadata
from iotml.core.settings import DurationMs, KafkaSettings, ServiceSettings

log = logging.getLogger(__name__)


class ReadingsTopic(ServiceSettings):
    """The canonical readings topic (bridge output, processor and archive input)."""

    topic_readings: str = Field("readings", description="Canonical readings (bridge output).")


class BridgeTopics(ReadingsTopic):
    """The topics the bridge writes."""

    topic_readings_dlq: str = Field("readings-dlq", description="Bridge dead-letter topic.")


class OutputTopics(ServiceSettings):
    """Where forecasts and alert events go (the processor; ``iotml batch --publish``)."""

    topic_predictions: str = Field("predictions", description="Forecasts, one per closed window.")
    topic_alerts: str = Field("alerts", description="Alert open/cleared events.")


class EvaluationsTopic(ServiceSettings):
    """Scored forecasts (the processor writes them; drift detection reads them)."""

    topic_evaluations: str = Field(
        "evaluations",
        description="Every forecast scored against its actual and persistence when its "
        "target window closes (the numbers of `iotml evaluate`).",
    )


class ModelEventsTopic(ServiceSettings):
    """Events of a model as a whole (``model_degraded``), key = model name."""

    topic_model_events: str = Field(
        "model-events",
        description="Model events (model_degraded open/cleared), key = model name; "
        "written by `iotml retrain --on-drift`.",
    )


class ProcessorTopics(EvaluationsTopic, ReadingsTopic, OutputTopics):
    """The topics the processor reads and writes."""

    topic_processor_dlq: str = Field("processor-dlq", description="Processor dead-letter topic.")
    topic_alert_state: str = Field(
        "alert-state",
        description="Compacted: the latest alert event per device and type (key "
        "<device>/<type>), so any service can rebuild the open alerts at start.",
    )


class EgressDeadLetterTopic(ServiceSettings):
    """Where ``iotml egress`` puts the records it cannot publish to MQTT."""

    topic_egress_dlq: str = Field(
        "egress-dlq",
        description="Egress dead-letter topic: records egress cannot publish to MQTT (not "
        "valid JSON or records, an MQTT topic that cannot be published on, refused by the "
        "broker), reason in headers.",
    )


class TopicNames(ModelEventsTopic, BridgeTopics, ProcessorTopics, EgressDeadLetterTopic):
    """Every topic name, so that one variable renames a topic everywhere."""


class TopicLayout(TopicNames):
    """How the topics are laid out (partitions, replication, retention)."""

    readings_partitions: int = Field(
        4,
        ge=1,
        description="Partitions of the readings topic: the most processor replicas "
        "that can share the work.",
    )
    output_partitions: int = Field(4, ge=1, description="Partitions of predictions and alerts.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of every topic.")
    readings_retention: DurationMs = Field(D("7d"), description="Retention of readings.")
    output_retention: DurationMs = Field(D("30d"), description="Retention of predictions/alerts.")
    dlq_retention: DurationMs = Field(D("14d"), description="Retention of dead-letter topics.")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    replication_factor: int = 1
    cleanup_policy: str = "delete"
    config: Mapping[str, str] = field(default_factory=dict)

    def topic_config(self) -> dict[str, str]:
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            **self.config,
        }


class TopicsSettings(KafkaSettings, TopicLayout):
    """Settings of ``iotml topics``: the layout and how to reach Kafka."""


def topic_specs(s: TopicLayout) -> list[TopicSpec]:
    """The topics iotml needs, from the settings."""
    rf = s.replication_factor
    return [
        TopicSpec(s.topic_readings, s.readings_partitions, s.readings_retention, rf),
        TopicSpec(s.topic_readings_dlq, 1, s.dlq_retention, rf),
        TopicSpec(s.topic_predictions, s.output_partitions, s.output_retention, rf),
        TopicSpec(s.topic_alerts, s.output_partitions, s.output_retention, rf),
        TopicSpec(s.topic_evaluations, s.output_partitions, s.output_retention, rf),
        TopicSpec(s.topic_processor_dlq, 1, s.dlq_retention, rf),
        TopicSpec(s.topic_model_events, 1, s.output_retention, rf),
        TopicSpec(s.topic_egress_dlq, 1, s.dlq_retention, rf),
        TopicSpec(
            s.topic_alert_state,
            s.output_partitions,
            -1,
            rf,
            cleanup_policy="compact",
            config={"min.cleanable.dirty.ratio": "0.1", "segment.ms": str(D("1d"))},
        ),
    ]


class TopicError(IotmlError, RuntimeError):
    """A topic could not be created or does not match its spec."""


@dataclass(frozen=True, slots=True)
class EnsureReport:
    created: list[str]
    existing: list[str]
    mismatched: dict[str, str]


def ensure_topics(
    kafka_conf: Mapping[str, Any], specs: Iterable[TopicSpec], timeout: float = 30.0
) -> EnsureReport:
    """Create the topics that are missing; idempotent. Existing topics are left as they are
    and reported when their partition count differs from the spec (changing it would move
    keys between partitions, so that is an operator's decision)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    specs = list(specs)
    admin, metadata = cluster_metadata(kafka_conf, timeout)
    existing = {name: len(t.partitions) for name, t in metadata.topics.items()}
    missing = [s for s in specs if s.name not in existing]
    created: list[str] = []
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication_factor, config=s.topic_config())
                for s in missing
            ],
            operation_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout)
                created.append(name)
            except KafkaException as exc:
                if (
                    exc.args
                    and getattr(exc.args[0], "name", lambda: "")() == "TOPIC_ALREADY_EXISTS"
                ):
                    continue  # created concurrently by another replica: fine
                raise TopicError(f"cannot create topic {name}: {exc}") from exc
    mismatched = {
        s.name: f"has {existing[s.name]} partitions, spec says {s.partitions}"
        for s in specs
        if s.name in existing and existing[s.name] != s.partitions
    }
    for name, why in mismatched.items():
        log.warning("topic %s %s; left unchanged", name, why)
    return EnsureReport(
        created=created,
        existing=[s.name for s in specs if s.name in existing],
        mismatched=mismatched,
    )
