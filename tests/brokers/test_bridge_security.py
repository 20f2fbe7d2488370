"""The bridge against a Mosquitto that wants TLS, a client certificate and a password.

The test CA, the broker's and the client's certificates and the password file are made in
``tmp_path`` (``openssl`` and ``mosquitto_passwd`` command lines); nothing is committed.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import bridge.runtime
from bridge.settings import BridgeSettings
from iotml.stack.procs import free_port
from tests.bridgetools import readings, running, seqs
from tests.kafkatools import consume_all
from tests.mqtttools import publish
from tests.tlstools import USERNAME, SecureMosquitto, accepted, secure_mosquitto

pytestmark = pytest.mark.brokers
__all__ = ["secure_mosquitto"]  # the fixture, defined with its helpers


@pytest.fixture
def secure_settings(
    make_settings: Callable[..., BridgeSettings], secure_mosquitto: SecureMosquitto
) -> Callable[..., BridgeSettings]:
    """The pipeline tests' settings, pointed at the secured broker with its credentials."""
    b = secure_mosquitto

    def make(**overrides: Any) -> BridgeSettings:
        return make_settings(
            **{
                "mqtt_url": b.url,
                "mqtt_ca": b.ca,
                "mqtt_cert": b.cert,
                "mqtt_key": b.key,
                "mqtt_username": USERNAME,
                "mqtt_password": b.password,
                **overrides,
            }
        )

    return make


def test_bridge_over_mutual_tls_with_a_password_delivers_readings_to_kafka(
    secure_settings: Callable[..., BridgeSettings],
    secure_mosquitto: SecureMosquitto,
    kafka_conf: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    b = secure_mosquitto
    # The broker really is locked down: each missing piece gets a client turned away.
    assert accepted(b, b.client(password=b.password))
    assert not accepted(b, b.client(cert=False, password=b.password)), "no client certificate"
    assert not accepted(b, b.client(password=None)), "anonymous"
    assert not accepted(b, b.client(password="not-" + b.password)), "wrong password"

    # paho's own DEBUG log (it sees the CONNECT packet) is captured too.
    make_client = bridge.runtime.make_client

    def logging_client(*args: Any, **kwargs: Any) -> Any:
        client = make_client(*args, **kwargs)
        client.enable_logger(logging.getLogger("paho.bridge"))
        return client

    monkeypatch.setattr(bridge.runtime, "make_client", logging_client)
    settings = secure_settings()
    caplog.set_level("DEBUG")
    with running(settings):
        publish(b.port, readings(300), client=b.client(password=b.password), host="localhost")
        records = consume_all(kafka_conf, settings.topic_readings, 300, timeout=30)
    assert sorted(seqs(records)) == list(range(300))
    assert f"MQTT localhost:{b.port} (TLS)" in caplog.text
    assert f"MQTT connected as {settings.mqtt_client_id}" in caplog.text
    assert re.search(rf"as {re.escape(settings.mqtt_client_id)} \(.*u'{USERNAME}'\)", b.log())
    assert "Sending CONNECT (u1, p1" in caplog.text  # DEBUG records, username and password set
    assert b.password not in caplog.text


def _readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def _log_times(out: str, needle: str) -> list[float]:
    stamps = [line[:23] for line in out.splitlines() if needle in line]
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f").timestamp() for s in stamps]


def test_wrong_password_retries_with_backoff_reports_not_ready_and_never_logs_it(
    secure_settings: Callable[..., BridgeSettings],
    secure_mosquitto: SecureMosquitto,
    kafka_conf: dict[str, Any],
    tmp_path: Path,
):
    b = secure_mosquitto
    wrong = f"wrong-{uuid.uuid4().hex}"
    right = b.password
    settings = secure_settings()
    http_port = free_port()
    env = {
        **os.environ,
        "IOTML_MQTT_URL": b.url,
        "IOTML_MQTT_CA": str(b.ca),
        "IOTML_MQTT_CERT": str(b.cert),
        "IOTML_MQTT_KEY": str(b.key),
        "IOTML_MQTT_USERNAME": USERNAME,
        "IOTML_MQTT_PASSWORD": wrong,
        "IOTML_MQTT_RECONNECT_MIN": "250ms",
        "IOTML_MQTT_RECONNECT_MAX": "1s",
        "IOTML_LOG_LEVEL": "DEBUG",
    }
    args = [
        sys.executable, "-m", "iotml", "bridge",
        "--kafka-bootstrap", settings.kafka_bootstrap,
        "--mqtt-client-id", settings.mqtt_client_id,
        "--topic-readings", settings.topic_readings,
        "--topic-readings-dlq", settings.topic_readings_dlq,
        "--http-port", str(http_port), "--http-host", "127.0.0.1",
    ]  # fmt: skip
    out_path = tmp_path / "bridge.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # Refused for ~4 s: alive, not ready, and the reason is MQTT.
        deadline = time.monotonic() + 15
        while "refused the connection" not in out_path.read_text():
            assert proc.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.1)
        statuses = []
        until = time.monotonic() + 4
        while time.monotonic() < until:
            assert proc.poll() is None, "the bridge exited on a refused connection"
            statuses.append(_readyz(http_port))
            time.sleep(0.2)
        assert {s for s, _ in statuses} == {503}, statuses
        assert all("MQTT broker not connected" in body for _, body in statuses), statuses

        # The operator fixes the broker side: the bridge's next retry gets in.
        b.set_password(wrong)
        deadline = time.monotonic() + 15
        while _readyz(http_port)[0] != 200:
            assert proc.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, f"never ready: {_readyz(http_port)}"
            time.sleep(0.1)
        time.sleep(0.3)  # the SUBACK
        publish(b.port, readings(50), client=b.client(password=b.password), host="localhost")
        records = consume_all(kafka_conf, settings.topic_readings, 50, timeout=30)
        assert sorted(seqs(records)) == list(range(50))
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = out_path.read_text()
    assert proc.returncode == 0, output
    refusals = _log_times(output, "MQTT broker refused the connection")
    assert refusals, output
    reason = output.split("MQTT broker refused the connection: ", 1)[1].splitlines()[0]
    assert reason in ("Bad user name or password", "Not authorized"), reason
    # Backoff: 250 ms, doubling to 1 s, so ~4.5 s of refusals is a handful of attempts,
    # each at least the first delay after the previous one, and the later ones >= ~1 s.
    gaps = [later - earlier for earlier, later in itertools.pairwise(refusals)]
    assert 3 <= len(refusals) <= 12, (len(refusals), gaps)
    assert min(gaps) >= 0.2, gaps
    assert max(gaps) >= 0.9, gaps
    assert "MQTT connected as" in output
    assert wrong not in output
    assert right not in output


def test_password_is_absent_from_help_settings_repr_and_config_errors():
    secret = f"pw-{uuid.uuid4().hex}"
    env = {**os.environ, "IOTML_MQTT_USERNAME": USERNAME, "IOTML_MQTT_PASSWORD": secret}
    cmd = [sys.executable, "-m", "iotml", "bridge"]
    helped = subprocess.run([*cmd, "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "--mqtt-password" in helped.stdout and "IOTML_MQTT_PASSWORD" in helped.stdout
    assert secret not in helped.stdout + helped.stderr
    # A configuration error reported with the password set (flag and variable) omits it.
    bad = subprocess.run(
        [*cmd, "--mqtt-password", secret, "--mqtt-url", "http://nowhere"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "IOTML_MQTT_URL" in bad.stdout + bad.stderr
    assert secret not in bad.stdout + bad.stderr

    values: dict[str, Any] = {"mqtt_username": USERNAME, "mqtt_password": secret, "http_port": 0}
    settings = BridgeSettings(**values)
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert secret not in text
        assert USERNAME in text
    assert settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == secret
