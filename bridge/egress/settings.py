"""Settings of ``iotml egress`` (every ``IOTML_*`` variable it reads).

The MQTT connection (URL, TLS files, credentials) is :class:`~iotml.core.settings.MqttSettings`
and the keepalive and reconnect delays are the bridge's own field definitions, so one
``IOTML_MQTT_*`` variable means the same thing for both services at the MQTT edge.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from bridge.egress.templates import TopicTemplate
from bridge.settings import BridgeSettings
from iotml.core.durations import parse_duration_ms as D
from iotml.core.settings import DurationMs, HttpSettings, KafkaSettings, MqttSettings
from iotml.core.topics import EgressDeadLetterTopic, OutputTopics, ProcessorTopics

__all__ = ["ALERT_FIELDS", "METRIC_FIELDS", "EgressSettings"]


def _same_as(cls: type[BaseSettings], name: str) -> Any:
    """``cls``'s definition of the setting ``name`` (type checks, default, help), so that
    one variable means one thing whichever service reads it."""
    return cls.model_fields[name]


#: The placeholders that are record fields (any other placeholder names a tag).
ALERT_FIELDS = ("device", "type")
METRIC_FIELDS = ("device", "metric")


class EgressTopics(OutputTopics, EgressDeadLetterTopic):
    """The Kafka topics egress reads and its dead-letter topic (the definitions of the
    topic spec)."""

    topic_evaluations: str = _same_as(ProcessorTopics, "topic_evaluations")
    topic_alert_state: str = _same_as(ProcessorTopics, "topic_alert_state")


class EgressSettings(KafkaSettings, MqttSettings, HttpSettings, EgressTopics):
    """``iotml egress``: alerts and forecasts from Kafka to MQTT, at least once."""

    egress_alert_topic: str = Field(
        "iotml/{site}/{device}/alerts/{type}",
        description="MQTT topic of a device's alerts of one type; the latest event is "
        "retained there. {device} and {type} are the alert's; any other {name} is the tag "
        "of that name.",
    )
    egress_forecast_topic: str = Field(
        "iotml/{site}/{device}/forecast/{metric}",
        description="MQTT topic of forecasts ({device}, {metric}, or a tag).",
    )
    egress_evaluation_topic: str = Field(
        "iotml/{site}/{device}/evaluation/{metric}",
        description="MQTT topic of scored forecasts ({device}, {metric}, or a tag).",
    )
    egress_tag_default: str = Field(
        "_",
        min_length=1,
        description="Value of a tag placeholder such as {site} when the record has no such "
        "tag (records carry the tags of their device's latest reading, e.g. the site the "
        "bridge took from the MQTT topic).",
    )
    egress_forecasts: bool = Field(True, description="Publish forecasts (topic predictions).")
    egress_evaluations: bool = Field(
        False, description="Publish scored forecasts (topic evaluations)."
    )
    egress_forecast_retain: bool = Field(
        False,
        description="Retain forecasts. They always carry an MQTT 5 message expiry at their "
        "target time, so the broker drops a retained forecast then.",
    )
    egress_group: str = Field(
        "iotml-egress",
        min_length=1,
        description="Kafka consumer group whose committed offsets say where egress resumes. "
        "Egress does not scale out: run ONE instance per group and MQTT broker (it reads "
        "every partition itself). A second instance with the same group is refused at "
        "start; one that joins later makes the running instance log errors.",
    )
    egress_start: Literal["latest", "earliest"] = Field(
        "latest",
        description="Where a group with no committed offsets starts: latest (open alerts "
        "still come from the alert-state topic) or earliest (every event still in Kafka).",
    )
    egress_max_in_flight: int = Field(
        1000,
        ge=1,
        le=20_000,
        description="MQTT messages published and not yet acknowledged by the broker. At the "
        "cap egress stops reading Kafka, so memory stays bounded while the broker is down.",
    )
    egress_commit_interval: DurationMs = Field(
        D("1s"),
        description="How often the offsets of records the MQTT broker acknowledged (with "
        "everything before them) are committed.",
    )
    ha_discovery: bool = Field(
        False,
        description="Publish Home Assistant MQTT discovery configs (retained): per device, "
        "one binary sensor per alert type and one sensor per forecast metric.",
    )
    ha_discovery_prefix: str = Field(
        "homeassistant", min_length=1, description="Home Assistant's discovery prefix."
    )
    ha_node_id: str = Field(
        "iotml",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Node id in discovery topics and prefix of unique ids ([A-Za-z0-9_-]).",
    )
    mqtt_client_id: str = Field(
        "iotml-egress", min_length=1, description="MQTT client id of egress."
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        "5",
        description="MQTT protocol version (5 for content type, user properties and "
        "message expiry).",
    )
    mqtt_keepalive: int = _same_as(BridgeSettings, "mqtt_keepalive")
    mqtt_reconnect_min: int = _same_as(BridgeSettings, "mqtt_reconnect_min")
    mqtt_reconnect_max: int = _same_as(BridgeSettings, "mqtt_reconnect_max")
    max_dead_letter_bytes: int = _same_as(BridgeSettings, "max_dead_letter_bytes")
    shutdown_timeout: DurationMs = Field(
        D("10s"),
        description="On SIGTERM, how long to wait for the MQTT broker to acknowledge what "
        "was published; offsets are committed up to what it acknowledged.",
    )

    @model_validator(mode="after")
    def _check_templates(self) -> EgressSettings:
        self.templates()
        prefix = self.ha_discovery_prefix
        if any(c in prefix for c in "+#") or prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(
                "IOTML_HA_DISCOVERY_PREFIX must be topic levels without + or # "
                "(and no leading or trailing /)"
            )
        return self

    def templates(self) -> tuple[TopicTemplate, TopicTemplate, TopicTemplate]:
        """(alerts, forecasts, evaluations); raises ``ValueError`` naming the variable."""
        checks = (
            ("egress_alert_topic", ALERT_FIELDS),
            ("egress_forecast_topic", METRIC_FIELDS),
            ("egress_evaluation_topic", METRIC_FIELDS),
        )
        parsed = []
        for name, fields in checks:
            try:
                parsed.append(TopicTemplate.parse(getattr(self, name), fields, fields))
            except ValueError as exc:
                raise ValueError(f"IOTML_{name.upper()}: {exc}") from None
        return parsed[0], parsed[1], parsed[2]

    def input_topics(self) -> list[str]:
        """The Kafka topics egress reads records from (besides the alert-state topic)."""
        topics = [self.topic_alerts]
        if self.egress_forecasts:
            topics.append(self.topic_predictions)
        if self.egress_evaluations:
            topics.append(self.topic_evaluations)
        return topics
