"""Home Assistant discovery configs, checked against Home Assistant's documented schema.

The key lists below are the configuration variables documented for MQTT discovery:
https://www.home-assistant.io/integrations/binary_sensor.mqtt/ ,
https://www.home-assistant.io/integrations/sensor.mqtt/ (including the ``device`` map) and
the discovery topic and ``origin`` of https://www.home-assistant.io/integrations/mqtt/ .
"""

from __future__ import annotations

import json
import re

import pytest

from bridge.egress.discovery import Discovery
from bridge.egress.metrics import EgressMetrics
from bridge.egress.outbox import Outbox
from bridge.egress.settings import EgressSettings
from iotml.core.records import ALERT_TYPES, Alert, Prediction

COMMON = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "device", "device_class", "enabled_by_default", "encoding", "entity_category",
    "entity_picture", "expire_after", "force_update", "icon", "json_attributes_template",
    "json_attributes_topic", "name", "object_id", "payload_available",
    "payload_not_available", "qos", "state_topic", "unique_id", "value_template",
}  # fmt: skip
BINARY_SENSOR_KEYS = COMMON | {"off_delay", "payload_off", "payload_on"}
SENSOR_KEYS = COMMON | {
    "last_reset_value_template", "options", "suggested_display_precision", "state_class",
    "unit_of_measurement",
}  # fmt: skip
DEVICE_KEYS = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
    "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
# Home Assistant's discovery topic matcher (homeassistant/components/mqtt/discovery.py)
TOPIC = re.compile(
    r"homeassistant/(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)"
    r"?(?P<object_id>[a-zA-Z0-9_-]+)/config\Z"
)
NOW = 1_764_070_000_000


def render(template: str, payload: bytes) -> str:
    """Home Assistant's value_template on an MQTT payload (the one form used here)."""
    match = re.fullmatch(r"\{\{ value_json\.(\w+) \}\}", template)
    assert match, template
    return str(json.loads(payload)[match.group(1)])


def alert(event: str, device: str = "press-7") -> Alert:
    return Alert(f"{device}:anomaly:1", device, "anomaly", event, NOW, NOW - 1, model_version="v")


@pytest.fixture
def outbox() -> Outbox:
    return Outbox(EgressSettings(ha_discovery=True), EgressMetrics(), sw_version="1.2.3")


def configs(messages):
    return {m.topic: json.loads(m.payload) for m in messages if m.kind == "discovery"}


def test_a_new_device_gets_one_binary_sensor_per_alert_type_before_its_alert(outbox):
    messages = outbox.for_record("alerts", alert("open").to_json(), NOW)
    assert [m.kind for m in messages] == ["discovery"] * len(ALERT_TYPES) + ["alert"]
    assert all(m.retain for m in messages)
    components = {TOPIC.match(t).group("component") for t in configs(messages)}
    assert components == {"binary_sensor"}


def test_binary_sensor_configs_use_only_documented_keys_and_the_required_ones(outbox):
    for topic, config in configs(outbox.for_record("alerts", alert("open").to_json(), NOW)).items():
        assert TOPIC.match(topic), topic
        assert TOPIC.match(topic).group("node_id") == "iotml"
        assert set(config) - {"origin"} <= BINARY_SENSOR_KEYS
        assert config["state_topic"] and config["unique_id"]
        assert set(config["device"]) <= DEVICE_KEYS and config["device"]["identifiers"]
        assert set(config["origin"]) <= ORIGIN_KEYS and config["origin"]["name"] == "iotml"


def test_the_binary_sensor_turns_on_when_the_alert_opens_and_off_when_it_clears(outbox):
    messages = outbox.for_record("alerts", alert("open").to_json(), NOW)
    state = messages[-1]
    config = next(c for c in configs(messages).values() if c["state_topic"] == state.topic)
    assert render(config["value_template"], state.payload) == config["payload_on"]
    (cleared,) = outbox.for_record("alerts", alert("cleared").to_json(), NOW)
    assert cleared.topic == config["state_topic"]
    assert render(config["value_template"], cleared.payload) == config["payload_off"]


def test_unique_ids_and_identifiers_differ_per_device_and_type(outbox):
    seen = {}
    for device in ("press-7", "a.b", "a:b"):
        seen.update(configs(outbox.for_record("alerts", alert("open", device).to_json(), NOW)))
    unique_ids = [c["unique_id"] for c in seen.values()]
    assert len(set(unique_ids)) == len(unique_ids) == 3 * len(ALERT_TYPES)
    devices = {c["device"]["name"]: tuple(c["device"]["identifiers"]) for c in seen.values()}
    assert len(set(devices.values())) == 3


def test_a_device_is_announced_once_per_connection(outbox):
    outbox.for_record("alerts", alert("open").to_json(), NOW)
    assert configs(outbox.for_record("alerts", alert("cleared").to_json(), NOW)) == {}
    outbox.reset_announcements()  # reconnected: the broker may have lost them
    assert configs(outbox.for_record("alerts", alert("open").to_json(), NOW))


def test_the_forecast_sensor_reads_the_forecast_from_its_topic(outbox):
    p = Prediction("press-7", "temperature", NOW, NOW + 10, 60_000, NOW + 60_000, 81.5, 80.0,
                   {}, "m", "v")  # fmt: skip
    messages = outbox.for_record("predictions", p.to_json(), NOW)
    forecast = messages[-1]
    (config,) = [
        c for t, c in configs(messages).items() if TOPIC.match(t).group("component") == "sensor"
    ]
    assert set(config) - {"origin"} <= SENSOR_KEYS
    assert config["state_topic"] == forecast.topic
    assert render(config["value_template"], forecast.payload) == "81.5"


def test_discovery_is_off_by_default():
    box = Outbox(EgressSettings(), EgressMetrics())
    assert [m.kind for m in box.for_record("alerts", alert("open").to_json(), NOW)] == ["alert"]


def test_the_discovery_prefix_and_node_id_are_settings():
    config = Discovery("ha", "plant_a").alert_sensor("d", "anomaly", "x/y")
    assert config.topic == "ha/binary_sensor/plant_a/d_anomaly/config"
    assert json.loads(config.payload)["unique_id"] == "plant_a_d_anomaly"
