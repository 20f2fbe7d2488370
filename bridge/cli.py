"""``iotml bridge``."""

from __future__ import annotations

from typing import Any

import click

from bridge.settings import BridgeSettings
from iotml.core.http import run_service
from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options


@click.command("bridge")
@settings_options(BridgeSettings)
def bridge(**kwargs: Any) -> None:
    """Republish MQTT sensor topics into Kafka, at least once, end to end.

    Each message matching a route becomes a canonical reading on its Kafka topic (keyed
    by device, stamped with its event time, with the MQTT topic, QoS, retain flag,
    receive time and MQTT 5 properties in headers); anything else goes to the dead-letter
    topic with a reason. MQTT messages are acknowledged only after Kafka confirmed them,
    in the order they arrived; the broker keeps the rest in this bridge's persistent
    session. SIGTERM: stop reading, flush Kafka, ack what was delivered, exit.
    """
    from bridge.runtime import Bridge
    from iotml.core.kafka_connect import check_kafka_config

    settings = build_settings(BridgeSettings, kwargs)
    setup_logging(settings.log_level)
    # A wrong CA, certificate or protocol would otherwise look like a broker that is
    # down: the bridge waits for Kafka, with the backlog kept in the MQTT session.
    check_kafka_config(settings.kafka_config())
    run_service(Bridge(settings), settings.http_host, settings.http_port)
