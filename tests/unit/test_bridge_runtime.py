import logging
import threading
import time

import pytest

from bridge.runtime import Bridge
from bridge.settings import BridgeSettings


def test_secrets_never_reach_the_log(caplog: pytest.LogCaptureFixture):
    settings = BridgeSettings(
        kafka_bootstrap="127.0.0.1:1",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="svc",
        kafka_sasl_password="kafka-s3cret",
        mqtt_url="mqtt://127.0.0.1:1",
        mqtt_username="dev",
        mqtt_password="mqtt-s3cret",
        http_port=0,
        shutdown_timeout=100,
    )
    caplog.set_level(logging.DEBUG)
    bridge = Bridge(settings)
    thread = threading.Thread(target=bridge.run)
    thread.start()
    time.sleep(2.5)  # a failed Kafka probe and MQTT connection attempts
    bridge.stop()
    thread.join(10)
    assert "MQTT connect to 127.0.0.1:1 failed" in caplog.text
    assert "s3cret" not in caplog.text
    assert "s3cret" not in repr(settings)
