"""``iotml demo``: the whole pipeline on one machine, without Docker.

Brings up the local stack (real Kafka 4 and Mosquitto), ensures the topics, trains a model
on synthetic history when the registry has none, starts bridge, processor, egress,
simulator and dashboard as child processes, and shows the latest prediction and open
alerts per device and what egress published to MQTT (:mod:`iotml.demo_mqtt`), at the end
the retained alert topics. Ctrl-C (``--duration``) stops the children, then the brokers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from pydantic import Field

from iotml.core.logs import setup_logging
from iotml.core.options import build_settings, settings_options
from iotml.core.settings import ModelLocation
from iotml.demo_mqtt import MqttSide, show_retained
from iotml.stack.procs import free_port, port_or_free, stop_pid
from iotml.stack.settings import StackSettings

#: The demo's model (10 s windows) is kept apart from the default name's.
DEMO_MODEL_NAME = "demo"


class DemoSettings(StackSettings, ModelLocation):
    """Settings of ``iotml demo`` (plus those of ``iotml stack``). The model lives in the
    registry every command uses; its short windows get their own name, so that the demo
    never runs a user's model or overwrites it. A model is trained on synthetic history
    when the name has none."""

    model_name: str = Field(DEMO_MODEL_NAME, description="Model name of the demo's model.")
    devices: int = Field(6, ge=1, le=1000, description="Simulated devices.")
    fault: str = Field(
        "dev-0003:drop@60s",
        description="Fault injected by the simulator, as DEVICE:KIND[@START[-END]] (see "
        "`iotml simulate --help`); the default drops one device's temperature after a minute, "
        "as the real machine in the NAB data did before it failed.",
    )
    duration: float = Field(0, ge=0, description="Stop after this many seconds (0: until Ctrl-C).")
    plain: bool = Field(
        False, description="Plain line output instead of the live table (for logs/tests)."
    )
    window: str = Field("10s", description="Window of the demo model (when one is trained).")
    horizon: str = Field("20s", description="Forecast horizon of the demo model (when trained).")
    k: int = Field(2, ge=0, description="Previous windows used by the demo model (when trained).")
    dashboard_port: int = Field(
        8080, ge=0, le=65535, description="Port of the live page (a free one when taken)."
    )


@dataclass
class _View:
    """The latest prediction and the open alerts per device."""

    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    open_alerts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    n_predictions: int = 0
    n_alert_events: int = 0
    alerted_devices: set[str] = field(default_factory=set)
    mqtt_retained: dict[str, dict[str, Any]] = field(default_factory=dict)  # at the end

    def on_prediction(self, p: dict[str, Any]) -> str:
        self.predictions[p["device_id"]] = p
        self.n_predictions += 1
        return (
            f"prediction device={p['device_id']} window_end={_hms(p['window_end'])} "
            f"last={p['last_value']:.2f} forecast(+{p['horizon_ms'] // 1000}s)={p['forecast']:.2f} "
            f"model={p['model_version']}"
        )

    def on_alert(self, a: dict[str, Any]) -> str:
        self.n_alert_events += 1
        per_device = self.open_alerts.setdefault(a["device_id"], {})
        if a["event"] == "open":
            per_device[a["alert_id"]] = a
            self.alerted_devices.add(a["device_id"])
        else:
            per_device.pop(a["alert_id"], None)
        return (
            f"alert {a['event']} device={a['device_id']} type={a['type']} "
            f"id={a['alert_id']} at={_hms(a['ts'])} value={a.get('value')}"
        )

    def table(self) -> str:
        lines = [
            f"{'device':<12} {'window end':>10} {'last':>8} {'forecast':>9}  {'model':<16} open alerts",
            "-" * 78,
        ]
        for device in sorted(set(self.predictions) | set(self.open_alerts)):
            p = self.predictions.get(device)
            alerts = ", ".join(sorted(a["type"] for a in self.open_alerts.get(device, {}).values()))
            if p:
                lines.append(
                    f"{device:<12} {_hms(p['window_end']):>10} {p['last_value']:>8.2f} "
                    f"{p['forecast']:>9.2f}  {p['model_version']:<16} {alerts}"
                )
            else:
                lines.append(f"{device:<12} {'':>10} {'':>8} {'':>9}  {'':<16} {alerts}")
        lines.append("")
        lines.append(
            f"{self.n_predictions} predictions, {self.n_alert_events} alert events.  Ctrl-C stops."
        )
        return "\n".join(lines)


def _hms(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000))


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTML_")}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 (closed when the child exits)
    return subprocess.Popen(
        [sys.executable, "-m", "iotml", *args],
        env=_child_env(env),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the demo only; it stops the children in order
    )


def _start_dashboard(
    children: list[tuple[str, subprocess.Popen[bytes]]],
    common: dict[str, str],
    logs: Path,
    port: int,
) -> str:
    """Start ``iotml dashboard`` on localhost ``port`` and say where it is."""
    env = {**common, "IOTML_HTTP_PORT": str(port)}
    children.append(("dashboard", _start("dashboard", ["dashboard"], env, logs)))
    page = f"live page: http://127.0.0.1:{port}/ (iotml dashboard)"
    click.echo(page, err=True)
    return page


def needs_model(registry: Path, name: str) -> bool:
    """True when the registry has no published version of ``name`` (then the demo trains)."""
    from models.registry import Registry

    return Registry(registry).latest(name) is None


def run_demo(s: DemoSettings) -> _View:
    from confluent_kafka import Consumer

    from iotml.stack.cli import brokers, stack_up

    kafka, mqtt = brokers(s)
    started_stack = not (kafka.running() and mqtt.running())
    stack_up(s)
    bootstrap = f"127.0.0.1:{kafka.port}"
    logs = s.stack_dir / "demo-logs"
    logs.mkdir(parents=True, exist_ok=True)
    common = {"IOTML_KAFKA_BOOTSTRAP": bootstrap, "IOTML_LOG_LEVEL": s.log_level}
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    view = _View()
    side: MqttSide | None = None
    try:
        if needs_model(s.model_registry, s.model_name):
            click.echo(
                f"no model {s.model_name!r} in {s.model_registry}: training one on "
                "synthetic history ...",
                err=True,
            )
            train_args = ["train", "--input", f"synthetic://devices={s.devices},days=1,step=1s"]
            train_args += ["--window", s.window, "--horizon", s.horizon, "--k", str(s.k)]
            train_args += ["--model-name", s.model_name, "--model-registry", str(s.model_registry)]
            train = subprocess.run(
                [sys.executable, "-m", "iotml", *train_args], env=_child_env(common)
            )
            if train.returncode != 0:
                raise click.ClickException("training the demo model failed (see above)")
        services: list[tuple[str, list[str], dict[str, str]]] = [
            ("bridge", ["bridge"], {"IOTML_MQTT_URL": mqtt.url}),
            (
                "processor",
                ["processor"],
                {
                    "IOTML_MODEL_REGISTRY": str(s.model_registry),
                    "IOTML_MODEL_NAME": s.model_name,
                    "IOTML_STATE_DIR": str(s.stack_dir / "processor-state"),
                },
            ),
            # before the simulator, so that egress publishes the first alert already
            ("egress", ["egress"], {"IOTML_MQTT_URL": mqtt.url}),
            (
                "simulator",
                ["simulate", "--sim-devices", str(s.devices), "--sim-faults", s.fault],
                {"IOTML_MQTT_URL": mqtt.url, "IOTML_SIM_PROGRESS": "0s"},
            ),
        ]
        # every child's port chosen before any binds it, so no two get the same one
        taken = {page_port := port_or_free(s.dashboard_port)}
        for name, args, env in services:
            taken.add(port := free_port(avoid=taken))
            env = {**common, **env, "IOTML_HTTP_PORT": str(port)}
            children.append((name, _start(name, args, env, logs)))
        click.echo(f"bridge, processor, egress and simulator running; logs in {logs}", err=True)
        page = _start_dashboard(children, common, logs, page_port)
        side = MqttSide(mqtt.port)

        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"iotml-demo-{os.getpid()}-{time.time_ns()}",
                "auto.offset.reset": "latest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([s.topic_predictions, s.topic_alerts])
        started = time.monotonic()
        last_draw = 0.0
        try:
            while not stopping:
                if s.duration and time.monotonic() - started >= s.duration:
                    break
                for name, child in children:
                    if child.poll() is not None:
                        raise click.ClickException(
                            f"{name} exited with status {child.returncode}; see {logs / (name + '.log')}"
                        )
                for msg in consumer.consume(500, 0.5):
                    if msg.error() or msg.value() is None:
                        continue
                    record = json.loads(msg.value())
                    line = (
                        view.on_prediction(record)
                        if msg.topic() == s.topic_predictions
                        else view.on_alert(record)
                    )
                    if s.plain:
                        click.echo(line)
                if not s.plain and time.monotonic() - last_draw >= 1.0:
                    click.echo("\x1b[2J\x1b[H" + "\n".join([view.table(), page, "", *side.lines()]))
                    last_draw = time.monotonic()
        finally:
            consumer.close()
        # as a subscriber connecting now sees it (while Mosquitto still runs)
        view.mqtt_retained = show_retained(mqtt.port, click.echo)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if side is not None:
            side.close()
        for name, child in reversed(children):
            if child.poll() is None:
                stop_pid(child.pid, 30)
            child.wait()
            click.echo(f"{name}: stopped", err=True)
        if started_stack:
            kafka.stop()
            mqtt.stop()
            click.echo("stack: stopped", err=True)
    click.echo(
        f"demo: {view.n_predictions} predictions, {view.n_alert_events} alert events, "
        f"alerts on {sorted(view.alerted_devices)}, "
        f"{len(view.mqtt_retained)} retained alert topics on MQTT"
    )
    return view


@click.command("demo")
@settings_options(DemoSettings)
def demo(**kwargs: Any) -> None:
    """Run the whole pipeline locally: real Kafka + Mosquitto, bridge, processor, egress,
    simulator.

    Trains a model on synthetic history first when the registry has none. Shows the latest
    prediction and open alerts per device, and the alert topics egress publishes on MQTT;
    at the end, the retained alert topics (and their state) a new subscriber receives.
    Ctrl-C stops everything cleanly.
    """
    s = build_settings(DemoSettings, kwargs)
    setup_logging(s.log_level)
    run_demo(s)
