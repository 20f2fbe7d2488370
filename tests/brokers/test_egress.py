"""`iotml egress` through the real Kafka and Mosquitto, as a child process.

Alert events are produced straight into Kafka's ``alerts`` and ``alert-state`` topics, as
the processor writes them (no processor needed). The tests check the templated topics, the
retained state a late subscriber sees, the Home Assistant binary sensor turning on and off,
at-least-once delivery in order per device across ``kill -9``, and a Mosquitto outage.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from iotml.core.records import Alert, Prediction
from iotml.stack import MosquittoBroker
from iotml.stack.procs import free_port
from tests.kafkatools import produce

pytestmark = [pytest.mark.brokers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ALERTS = "iotml/+/+/alerts/+"


class EgressProc:
    """``iotml egress`` in a child process, configured through the environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.http_port = env, log, int(env["IOTML_HTTP_PORT"])
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "iotml", "egress"],
                env={**os.environ, **env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(30)

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}") as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except OSError:
            return 0, ""

    def wait_ready(self, ready: bool = True, timeout: float = 30) -> None:
        with log_on_failure(self):
            until(lambda: (self.http("/readyz")[0] == 200) == ready, f"ready={ready}", timeout)

    def metric(self, name: str) -> float:
        found = re.search(rf"^{name} (\S+)$", self.http("/metrics")[1], re.M)
        return float(found.group(1)) if found else 0.0


def until(done: Callable[[], Any], what: str, timeout: float = 20, pause: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(pause)


@contextlib.contextmanager
def log_on_failure(proc: EgressProc) -> Iterator[None]:
    """Show egress's log when the block fails (the child's output is not captured)."""
    try:
        yield
    except AssertionError:
        print(proc.log.read_text(errors="replace"))
        raise


@pytest.fixture
def egress_topics(topics: Callable[..., str]) -> dict[str, str]:
    return {
        "topic_alerts": topics("alerts", 4),
        "topic_alert_state": topics("alert-state", 4, **{"cleanup.policy": "compact"}),
        "topic_predictions": topics("predictions", 4),
    }


@pytest.fixture
def egress(
    kafka_conf: dict[str, Any],
    egress_topics: dict[str, str],
    unique: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[Callable[..., EgressProc]]:
    started: list[EgressProc] = []
    group, client_id = unique("egress"), unique("egress")

    def make(broker: MosquittoBroker, **settings: Any) -> EgressProc:
        env = {
            "IOTML_KAFKA_BOOTSTRAP": kafka_conf["bootstrap.servers"],
            "IOTML_MQTT_URL": broker.url,
            "IOTML_HTTP_PORT": str(free_port()),
            "IOTML_EGRESS_GROUP": group,
            "IOTML_MQTT_CLIENT_ID": client_id,
            "IOTML_EGRESS_COMMIT_INTERVAL": "200ms",
            "IOTML_MQTT_RECONNECT_MAX": "1s",
        }
        values = {**egress_topics, **settings}
        env.update({f"IOTML_{k.upper()}": str(v) for k, v in values.items()})
        started.append(EgressProc(env, tmp_path / f"egress-{len(started)}.log"))
        return started[-1]

    yield make
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


class Subscriber:
    """A paho subscriber that keeps every message; ``session``: a persistent MQTT 5
    session that survives broker restarts (the broker queues what it misses)."""

    def __init__(self, port: int, filters: list[str], session: str | None = None) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=session or f"sub-{os.urandom(4).hex()}",
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in filters])
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600 if session else 0
        self.client.connect("127.0.0.1", port, clean_start=session is None, properties=props)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def events(self) -> list[tuple[str, str, str]]:
        """(device, alert_id, event) of every alert message, in arrival order."""
        decoded = [json.loads(m.payload) for m in list(self.messages)]
        return [(o["device_id"], o["alert_id"], o["event"]) for o in decoded]

    def payloads(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in list(self.messages) if m.topic == topic]

    def has(self, alerts: list[Alert]) -> bool:
        return {(a.alert_id, a.event) for a in alerts} <= {(i, e) for _, i, e in self.events()}


def retained(port: int, topic_filter: str, settle: float = 1.0) -> dict[str, Any]:
    """What a subscriber connecting now receives retained: topic -> decoded payload."""
    sub = Subscriber(port, [topic_filter])
    time.sleep(settle)
    sub.close()
    return {m.topic: json.loads(m.payload) for m in sub.messages if m.retain}


def wait_retained(port: int, topic_filter: str, want: dict[str, Any]) -> None:
    until(lambda: retained(port, topic_filter, settle=0.3) == want, f"retained {want}", pause=0)


def token() -> str:
    """A device-name prefix of this test alone (the session's Mosquitto keeps retained
    messages of every test)."""
    return f"d{os.urandom(3).hex()}"


def event(device: str, kind: str, ev: str, start: int, ts: int) -> Alert:
    return Alert(f"{device}:{kind}:{start}", device, kind, ev, ts, start, 1.0, 0.5, "v3", "m")


def produce_alerts(conf: dict[str, Any], topics: dict[str, str], alerts: list[Alert]) -> None:
    """As the processor writes them: the event, then the latest state of device and type."""
    for a in alerts:
        produce(conf, topics["topic_alerts"], [(a.device_id, a.to_json())])
        produce(conf, topics["topic_alert_state"], [(f"{a.device_id}/{a.type}", a.to_json())])


def render(template: str, payload: dict[str, Any]) -> str:
    """Home Assistant's ``{{ value_json.<key> }}`` on a decoded payload."""
    found = re.fullmatch(r"\{\{ value_json\.(\w+) \}\}", template)
    assert found, template
    return str(payload[found.group(1)])


def test_alerts_reach_their_topics_retained_until_cleared_and_home_assistant_follows(
    egress, egress_topics, kafka_conf, mosquitto_broker
):
    now, port, dev = int(time.time() * 1000), mosquitto_broker.port, token()
    old = event(f"{dev}-old", "anomaly", "open", now - 60_000, now - 50_000)
    produce_alerts(kafka_conf, egress_topics, [old])  # before egress ever ran
    proc = egress(mosquitto_broker, ha_discovery="true")
    proc.wait_ready()
    live = Subscriber(port, ["iotml/#"])

    # an alert open before the first start is rebuilt from alert-state, retained
    want = {f"iotml/_/{dev}-old/alerts/anomaly": old.to_dict()}
    wait_retained(port, f"iotml/_/{dev}-old/alerts/+", want)

    opened = event(dev, "out_of_range", "open", now, now + 1_000)
    produce_alerts(kafka_conf, egress_topics, [opened])
    late = Prediction(dev, "temperature", now, now + 1, 1, now - 1, 1.0, 1.0, {}, "m", "v3")
    forecast = Prediction(
        dev, "temperature", now, now + 10_000, 60_000, now + 70_000, 81.5, 80.0, {}, "m", "v3"
    )
    for p in (late, forecast):
        produce(kafka_conf, egress_topics["topic_predictions"], [(dev, p.to_json())])
    topic = f"iotml/_/{dev}/alerts/out_of_range"
    forecast_topic = f"iotml/_/{dev}/forecast/temperature"
    until(lambda: live.payloads(topic) and live.payloads(forecast_topic), "alert and forecast")
    (alert_msg,) = [m for m in live.messages if m.topic == topic]
    assert json.loads(alert_msg.payload) == opened.to_dict()
    assert alert_msg.properties.ContentType == "application/json"
    props = dict(alert_msg.properties.UserProperty)
    assert props == {"alert_id": opened.alert_id, "model_version": "v3"}
    (fc,) = [m for m in live.messages if m.topic == forecast_topic]  # the late one skipped
    assert json.loads(fc.payload)["forecast"] == 81.5
    assert 55 <= fc.properties.MessageExpiryInterval <= 71
    assert proc.metric("iotml_egress_forecasts_expired_total") == 1

    # a subscriber connecting after the alert opened receives it retained; HA reads it as on
    state = retained(port, topic)[topic]
    assert state["event"] == "open"
    configs = retained(port, "homeassistant/binary_sensor/iotml/+/config")
    config = configs[f"homeassistant/binary_sensor/iotml/{dev}_out_of_range/config"]
    assert config["state_topic"] == topic and config["device"]["identifiers"]
    assert render(config["value_template"], state) == config["payload_on"]

    cleared = event(dev, "out_of_range", "cleared", now, now + 5_000)
    produce_alerts(kafka_conf, egress_topics, [cleared])
    until(lambda: len(live.payloads(topic)) == 2, "the clear")
    live.close()
    after = retained(port, f"iotml/_/{dev}/alerts/+")
    assert after == {topic: cleared.to_dict()}  # no open alert for that device and type
    assert render(config["value_template"], after[topic]) == config["payload_off"]
    assert proc.stop() == 0
    assert "stopped cleanly" in proc.log.read_text()


def episodes(prefix: str, devices: int, per_device: int, t0: int) -> list[Alert]:
    """Alternating open/cleared events, device by device in turn (Kafka order per device)."""
    out = []
    for i in range(per_device):
        for d in range(devices):
            kind = ("anomaly", "out_of_range")[(d + i // 2) % 2] if d == 0 else "anomaly"
            start = t0 + (i // 2) * 1_000
            ev = "open" if i % 2 == 0 else "cleared"
            out.append(event(f"{prefix}-{d}", kind, ev, start, start + (i % 2) * 500))
    return out


def assert_at_least_once_in_order(sent: list[Alert], got: list[tuple[str, str, str]]) -> int:
    """Every event arrived, and each device's events first arrived in Kafka order; returns
    the number of duplicates."""
    devices = {a.device_id for a in sent}
    got = [g for g in got if g[0] in devices]  # other tests' retained alerts aside
    first: dict[str, list[tuple[str, str]]] = {}
    seen: set[tuple[str, str]] = set()
    for device, alert_id, ev in got:
        if (alert_id, ev) not in seen:
            seen.add((alert_id, ev))
            first.setdefault(device, []).append((alert_id, ev))
    for device in devices:
        expected = [(a.alert_id, a.event) for a in sent if a.device_id == device]
        assert first.get(device) == expected, f"{device}: events missing or out of order"
    return len(got) - len(seen)


def test_kill_9_mid_stream_loses_no_alert_event_and_keeps_each_device_in_order(
    egress, egress_topics, kafka_conf, mosquitto_broker
):
    sent = episodes(token(), devices=4, per_device=40, t0=int(time.time() * 1000) - 600_000)
    sub = Subscriber(mosquitto_broker.port, [ALERTS])
    first = egress(mosquitto_broker)
    first.wait_ready()

    def feed() -> None:
        for i in range(0, len(sent), 8):
            produce_alerts(kafka_conf, egress_topics, sent[i : i + 8])
            time.sleep(0.1)

    producer = threading.Thread(target=feed)
    producer.start()
    try:
        until(lambda: len(sub.messages) >= 40, "the first messages", 30)
        first.stop(signal.SIGKILL)
        killed_at = len(sub.messages)
        second = egress(mosquitto_broker)
        second.wait_ready()
    finally:
        producer.join()
    until(lambda: sub.has(sent), "every event", 60)
    time.sleep(1.0)  # the states the restart re-publishes
    sub.close()
    duplicates = assert_at_least_once_in_order(sent, sub.events())
    assert killed_at < len(sent), "the kill came after the stream"
    print(f"{len(sent)} events, killed after {killed_at}, {duplicates} duplicate(s)")
    assert second.stop() == 0


def test_a_mosquitto_outage_loses_nothing_and_the_retained_state_is_rebuilt(
    egress, egress_topics, kafka_conf, own_mosquitto
):
    sent = episodes(token(), devices=3, per_device=10, t0=int(time.time() * 1000) - 600_000)
    before, during = sent[:9], sent[9:]
    sub = Subscriber(own_mosquitto.port, [ALERTS], session=f"sub-{os.urandom(4).hex()}")
    proc = egress(own_mosquitto)
    proc.wait_ready()
    produce_alerts(kafka_conf, egress_topics, before)
    until(lambda: sub.has(before), "the events before the outage")

    own_mosquitto.stop()
    outage = time.monotonic()
    proc.wait_ready(False, timeout=10)
    for a in during:  # alerts keep coming while the broker is away
        produce_alerts(kafka_conf, egress_topics, [a])
        time.sleep(0.3)
    assert proc.http("/readyz")[0] == 503
    time.sleep(max(0.0, 10 - (time.monotonic() - outage)))
    own_mosquitto.start()
    proc.wait_ready(timeout=20)
    with log_on_failure(proc):
        until(lambda: sub.has(sent), "every event", 30)
    sub.close()
    assert_at_least_once_in_order(sent, sub.events())

    latest = {f"iotml/_/{a.device_id}/alerts/{a.type}": a.to_dict() for a in sent}
    assert retained(own_mosquitto.port, ALERTS) == latest
    # the broker comes back without its retained messages: egress restores them
    own_mosquitto.stop()
    (own_mosquitto.data_dir / "mosquitto.db").unlink()
    own_mosquitto.start()
    proc.wait_ready(timeout=20)
    with log_on_failure(proc):
        wait_retained(own_mosquitto.port, ALERTS, latest)
    # at the start and after the last reconnection (the one before may have been cut short)
    until(lambda: proc.metric("iotml_egress_state_rebuilds_total") >= 2, "the rebuild")
    assert proc.stop() == 0


def test_mqtt_3_1_1_mode_publishes_retained_alerts(
    egress, egress_topics, kafka_conf, mosquitto_broker
):
    proc = egress(mosquitto_broker, mqtt_protocol="3.1.1")
    proc.wait_ready()
    now = int(time.time() * 1000)
    a = event(token(), "anomaly", "open", now, now)
    produce_alerts(kafka_conf, egress_topics, [a])
    topic = f"iotml/_/{a.device_id}/alerts/anomaly"
    wait_retained(mosquitto_broker.port, topic, {topic: a.to_dict()})
    log = (mosquitto_broker.data_dir / "mosquitto.log").read_text(errors="replace")
    assert re.search(rf"as {re.escape(proc.env['IOTML_MQTT_CLIENT_ID'])} \(p2", log)
    assert proc.stop() == 0
