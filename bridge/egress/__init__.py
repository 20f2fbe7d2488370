"""``iotml egress``: alerts and forecasts from Kafka back to the IoT side over MQTT, at
least once and in order per device, with the current alert state retained."""

from bridge.egress.settings import EgressSettings

__all__ = ["EgressSettings"]
