"""The MQTT -> Kafka bridge (``iotml bridge``) and the device simulator (``iotml simulate``)."""

from bridge.routes import DEFAULT_ROUTE, Route, RouteTable, parse_route

__all__ = ["DEFAULT_ROUTE", "Route", "RouteTable", "parse_route"]
