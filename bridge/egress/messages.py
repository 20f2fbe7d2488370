"""Kafka records to MQTT messages: plain functions, tested without brokers.

Each MQTT payload is the Kafka record's value as the processor wrote it (checked first),
so a consumer reads the same JSON on either side and de-duplicates on ``alert_id`` and
``event``. Alerts go to their type's topic, retained: the retained message of a topic is
the latest event of that device and type, ``open`` or ``cleared`` (never an empty payload,
which Home Assistant would ignore, leaving its sensor on). Forecasts carry an MQTT 5
message expiry at their target time; one whose target time has passed is not published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.egress.templates import TopicTemplate
from iotml.core.errors import RecordError
from iotml.core.evaluations import Evaluation
from iotml.core.records import Alert, Prediction
from iotml.core.strictjson import decode_json

__all__ = [
    "BAD_MQTT_TOPIC",
    "CONTENT_TYPE",
    "Outgoing",
    "alert_message",
    "evaluation_message",
    "forecast_message",
    "mqtt_properties",
    "order",
    "parse",
]

CONTENT_TYPE = "application/json"

#: The longest topic MQTT can carry (a UTF-8 string with a two-byte length).
MAX_TOPIC_BYTES = 65_535
#: The reason of a record whose topic MQTT cannot carry (it goes to the dead letters).
BAD_MQTT_TOPIC = "bad_mqtt_topic"

#: What a record's MQTT message is for (the label of the published metric).
ALERT, FORECAST, EVALUATION, STATE, DISCOVERY = (
    "alert",
    "forecast",
    "evaluation",
    "state",
    "discovery",
)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One MQTT message to publish at QoS 1."""

    topic: str
    payload: bytes
    retain: bool
    kind: str
    expiry_s: int | None = None  # MQTT 5 message expiry interval
    user_properties: tuple[tuple[str, str], ...] = ()


def _object(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise RecordError("empty", "the record has no value")
    obj = decode_json(raw)
    if type(obj) is not dict:
        raise RecordError("wrong_type", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def tags_of(obj: Mapping[str, Any]) -> dict[str, str]:
    """The record's ``tags`` (string to string); records without tags have none."""
    tags = obj.get("tags")
    if not isinstance(tags, dict):
        return {}
    return {k: v for k, v in tags.items() if isinstance(k, str) and isinstance(v, str)}


def parse(kind: str, raw: bytes | None) -> tuple[Alert | Prediction | Evaluation, dict[str, str]]:
    """The record of ``kind`` (alert, forecast, evaluation) in ``raw`` and its tags; raises
    :class:`RecordError` with the reason."""
    obj = _object(raw)
    record: Alert | Prediction | Evaluation
    if kind == ALERT:
        record = Alert.from_dict(obj)
    elif kind == FORECAST:
        record = Prediction.from_dict(obj)
    else:
        record = Evaluation.from_dict(obj)
    return record, tags_of(obj)


def _topic(
    template: TopicTemplate, values: Mapping[str, str], tags: Mapping[str, str], default: str
) -> str:
    """The rendered topic; :class:`RecordError` when MQTT cannot carry it. Every value fills
    one level with no wildcard (:mod:`~bridge.egress.templates`), so only its length can
    be wrong: a template with many tag placeholders, each up to the tags' bound."""
    topic = template.render(values, tags, default)
    size = len(topic.encode("utf-8", "surrogatepass"))
    if size > MAX_TOPIC_BYTES:
        raise RecordError(
            BAD_MQTT_TOPIC, f"the topic would be {size} bytes, more than MQTT's {MAX_TOPIC_BYTES}"
        )
    return topic


def order(alert: Alert) -> tuple[int, int]:
    """Where an event stands in its device and type's history: by event time, and a clear
    after the open at the same time."""
    return alert.ts, 1 if alert.event == "cleared" else 0


def alert_message(
    alert: Alert,
    raw: bytes,
    tags: Mapping[str, str],
    template: TopicTemplate,
    default: str,
    *,
    retain: bool = True,
    kind: str = ALERT,
) -> Outgoing:
    topic = _topic(template, {"device": alert.device_id, "type": alert.type}, tags, default)
    props = [("alert_id", alert.alert_id)]
    if alert.model_version:
        props.append(("model_version", alert.model_version))
    return Outgoing(topic, raw, retain, kind, None, tuple(props))


def forecast_message(
    p: Prediction,
    raw: bytes,
    tags: Mapping[str, str],
    template: TopicTemplate,
    default: str,
    now_ms: int,
    *,
    retain: bool = False,
) -> Outgoing | None:
    """The forecast's message, expiring at its target time; ``None`` once that has passed."""
    remaining = p.target_ts - now_ms
    if remaining <= 0:
        return None
    topic = _topic(template, {"device": p.device_id, "metric": p.metric}, tags, default)
    expiry = -(-remaining // 1000)  # whole seconds, rounded up: never expires early
    return Outgoing(topic, raw, retain, FORECAST, expiry, (("model_version", p.model_version),))


def evaluation_message(
    e: Evaluation, raw: bytes, tags: Mapping[str, str], template: TopicTemplate, default: str
) -> Outgoing:
    topic = _topic(template, {"device": e.device_id, "metric": e.metric}, tags, default)
    return Outgoing(topic, raw, False, EVALUATION, None, (("model_version", e.model_version),))


def mqtt_properties(out: Outgoing) -> Properties:
    """The MQTT 5 PUBLISH properties of ``out``."""
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = CONTENT_TYPE
    props.PayloadFormatIndicator = 1  # UTF-8 text
    if out.expiry_s is not None:
        props.MessageExpiryInterval = out.expiry_s
    if out.user_properties:
        props.UserProperty = list(out.user_properties)
    return props
