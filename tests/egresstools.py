"""Helpers of the egress broker tests: egress as a child process, an MQTT subscriber, alerts
produced into Kafka, and the at-least-once-in-order check."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
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

from iotml.core.records import Alert
from iotml.stack import MosquittoBroker
from iotml.stack.procs import free_port
from tests.kafkatools import produce

REPO = Path(__file__).resolve().parents[1]
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
        "topic_egress_dlq": topics("egress-dlq", 1),
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
