"""Kafka header names used by every service. Values are UTF-8 strings."""

MQTT_TOPIC = "iotml.mqtt.topic"
MQTT_QOS = "iotml.mqtt.qos"
MQTT_RETAIN = "iotml.mqtt.retain"
MQTT_CONTENT_TYPE = "iotml.mqtt.content_type"
#: MQTT 5 user properties are copied as ``iotml.mqtt.prop.<name>``.
MQTT_USER_PROPERTY_PREFIX = "iotml.mqtt.prop."
RECEIVED_AT = "iotml.received_at"  # epoch ms UTC when the service received the message

ERROR_REASON = "iotml.error.reason"  # short code, e.g. invalid_json, late, no_route
ERROR_DETAIL = "iotml.error.detail"  # human-readable explanation
#: Set on a dead letter whose payload was cut to a prefix to fit in a Kafka record.
ERROR_TRUNCATED = "iotml.error.truncated"  # "true"
ERROR_ORIGINAL_SIZE = "iotml.error.original_size"  # bytes of the whole payload
ERROR_SHA256 = "iotml.error.sha256"  # hex SHA-256 of the whole payload
SOURCE_TOPIC = "iotml.source.topic"
SOURCE_PARTITION = "iotml.source.partition"
SOURCE_OFFSET = "iotml.source.offset"

MODEL_VERSION = "iotml.model.version"
#: Marks processor heartbeat records in the readings topic (see processor docs).
HEARTBEAT = "iotml.heartbeat"

Headers = list[tuple[str, bytes]]


def encode(pairs: dict[str, object]) -> Headers:
    """Headers as confluent-kafka wants them, skipping ``None`` values."""
    return [(k, str(v).encode()) for k, v in pairs.items() if v is not None]


def decode(headers: object) -> dict[str, str]:
    """A header list (or None) from a consumed message as a dict; the last value wins."""
    out: dict[str, str] = {}
    if not headers:
        return out
    for key, value in headers:  # type: ignore[attr-defined]
        if isinstance(value, bytes):
            out[key] = value.decode("utf-8", "replace")
        elif value is not None:
            out[key] = str(value)
    return out
