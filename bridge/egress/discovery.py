"""Home Assistant MQTT discovery configs, so each device appears in Home Assistant with one
binary sensor per alert type and one sensor per forecast metric.

Conventions followed (Home Assistant documentation):

* https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery: the config topic is
  ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`` with node and object
  ids in ``[a-zA-Z0-9_-]``, the payload a JSON object, published retained so that Home
  Assistant finds it again after a restart; ``origin`` names the software that publishes;
* https://www.home-assistant.io/integrations/binary_sensor.mqtt/ and
  https://www.home-assistant.io/integrations/sensor.mqtt/: the payload keys
  (``unique_id``, ``device.identifiers``, ``state_topic``, ``value_template``,
  ``payload_on``/``payload_off``...).

The binary sensor reads the retained alert event on its state topic: ``event`` is
``open`` (on) or ``cleared`` (off).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bridge.egress.messages import DISCOVERY, Outgoing
from bridge.egress.templates import slug

__all__ = ["ALERT_NAMES", "Discovery"]

#: The entity name of each alert type's binary sensor.
ALERT_NAMES = {
    "overheat_predicted": "Overheat predicted",
    "anomaly": "Anomaly",
    "out_of_range": "Out of range",
    "device_silent": "Silent",
    "deviation": "Off its normal",
}
PAYLOAD_ON, PAYLOAD_OFF = "open", "cleared"


@dataclass(frozen=True, slots=True)
class Discovery:
    """Discovery configs under ``prefix`` for node ``node_id``."""

    prefix: str = "homeassistant"
    node_id: str = "iotml"
    sw_version: str = "unknown"

    def _device(self, device_id: str) -> dict[str, Any]:
        return {
            "identifiers": [f"{self.node_id}_{slug(device_id)}"],
            "name": device_id,
            "manufacturer": "iotml",
            "model": "monitored device",
        }

    def _config(self, component: str, object_id: str, entity: dict[str, Any]) -> Outgoing:
        payload = {
            **entity,
            "unique_id": f"{self.node_id}_{object_id}",
            "qos": 1,
            "origin": {"name": "iotml", "sw_version": self.sw_version},
        }
        topic = f"{self.prefix}/{component}/{self.node_id}/{object_id}/config"
        return Outgoing(topic, json.dumps(payload).encode(), True, DISCOVERY)

    def alert_sensor(self, device_id: str, alert_type: str, state_topic: str) -> Outgoing:
        """The binary sensor of ``device_id``'s alerts of ``alert_type``."""
        entity = {
            "name": ALERT_NAMES.get(alert_type, alert_type),
            "state_topic": state_topic,
            "value_template": "{{ value_json.event }}",
            "payload_on": PAYLOAD_ON,
            "payload_off": PAYLOAD_OFF,
            "device_class": "problem",
            "device": self._device(device_id),
        }
        return self._config("binary_sensor", f"{slug(device_id)}_{alert_type}", entity)

    def forecast_sensor(self, device_id: str, metric: str, state_topic: str) -> Outgoing:
        """The sensor of ``device_id``'s forecasts of ``metric``."""
        entity = {
            "name": f"{metric} forecast",
            "state_topic": state_topic,
            "value_template": "{{ value_json.forecast }}",
            "state_class": "measurement",
            "device": self._device(device_id),
        }
        return self._config("sensor", f"{slug(device_id)}_{slug(metric)}_forecast", entity)
