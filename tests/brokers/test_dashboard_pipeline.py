"""The dashboard at the end of the real pipeline, in headless Chromium: a simulated fleet
publishes over MQTT (Mosquitto), ``iotml bridge`` writes the readings to Kafka, ``iotml
processor`` forecasts and alerts, ``iotml dashboard`` pushes to the page.

The evidence of issue 13 from a running fleet: the page loads, the fleet view lists the
simulator's devices, a device chart gains points as the processor's predictions arrive,
and the alert opened by a fault injected into the simulator (a sudden drop of one device's
temperature: an ``anomaly``) appears on the page within a few seconds of its Kafka record
(the alerts topic is stamped with the broker's append time; the page notes, with a
``MutationObserver``, the moment the alert is first shown, on the same clock).

Everything runs on the wall clock, so the model has short windows (2 s, forecasting 4 s
ahead) and the simulated devices read four times a second.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.settings import BridgeSettings
from iotml.core.durations import parse_duration_ms
from iotml.core.eventtime import now_ms
from iotml.core.records import Alert, Prediction
from iotml.stack import MosquittoBroker
from iotml.stack.procs import free_port
from models.synthetic import generate
from tests.bridgetools import wait_ready
from tests.childtools import IotmlChild, wait_for_children
from tests.dashboardtools import DashboardProc, headless_chromium
from tests.kafkatools import Record, consume_all
from tests.model_fixtures import train_tiny_artifact

pytestmark = [pytest.mark.brokers, pytest.mark.slow]

DEVICES = 4
FAULTY = "dev-0003"
FAULT = f"{FAULTY}:drop@20s"  # minus 25 °C for good, 20 s into the simulation
MODEL = "dashboard-fast"
WINDOW, HORIZON = "2s", "4s"
INTERVAL = "250ms"  # per device: 8 readings per window
TRAIN_MS = 15 * 60_000
SHOWN_WITHIN_MS = 5_000

# Records, on the page, when each open alert (device/type) was first shown (Date.now()).
WATCH_ALERTS = """
window.__alertSeen = {};
const box = document.getElementById("alerts");
const note = () => {
  for (const chip of box.querySelectorAll(".alert")) {
    const key = chip.dataset.device + "/" + chip.dataset.type;
    if (!(key in window.__alertSeen)) window.__alertSeen[key] = Date.now();
  }
};
new MutationObserver(note).observe(box, { childList: true, subtree: true });
note();
"""


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = headless_chromium()  # first: skips before anything is started
    yield driver
    driver.quit()


@pytest.fixture
def fast_registry(tmp_path: Path) -> Path:
    """A tiny model with 2 s windows, trained in seconds on the simulator's own physical
    model (the same devices, seed 0) over the last minutes: its time-of-day features have
    seen today's hour, so its forecasts stay sane. Only a large error alerts: the fault's."""
    registry = tmp_path / "registry"
    train_tiny_artifact(
        registry,
        name=MODEL,
        window=WINDOW,
        horizon=HORIZON,
        k=2,
        points=list(
            generate(
                devices=DEVICES,
                duration_ms=TRAIN_MS,
                interval_ms=parse_duration_ms(INTERVAL),
                start_ms=now_ms() - TRAIN_MS,
            )
        ),
        residual_threshold=10.0,  # the drop is 25 °C; noise and load changes are far below
        overheat_threshold=1000.0,
        low_limit=-1000.0,
        high_limit=1000.0,
        min_duration_ms=0,
        cooldown_ms=0,
    )
    return registry


def _opened(records: list[Record]) -> list[tuple[Record, Alert]]:
    alerts = [(r, Alert.from_json(r.value or b"")) for r in records]
    return [(r, a) for r, a in alerts if a.event == "open"]


def test_a_running_fleet_its_forecasts_and_a_faults_alert_reach_the_page(
    browser: Any,
    make_settings: Callable[..., BridgeSettings],
    mosquitto_broker: MosquittoBroker,
    kafka_conf: dict[str, Any],
    topics: Callable[..., str],
    unique: Callable[[str], str],
    processors: Callable[..., Any],
    fast_registry: Path,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    bridge = make_settings()  # its readings and dead-letter topics
    out = {
        "predictions": topics("predictions", 2),
        # the broker's append time: when the alert reached Kafka, on the page's clock
        "alerts": topics("alerts", 2, **{"message.timestamp.type": "LogAppendTime"}),
        "alert_state": topics("alert-state", 2, **{"cleanup.policy": "compact"}),
        "evaluations": topics("evaluations", 2),
    }
    dashboard = DashboardProc(
        {
            "IOTML_KAFKA_BOOTSTRAP": kafka_conf["bootstrap.servers"],
            "IOTML_HTTP_PORT": str(free_port()),
            "IOTML_TOPIC_PREDICTIONS": out["predictions"],
            "IOTML_TOPIC_ALERTS": out["alerts"],
            "IOTML_TOPIC_EVALUATIONS": out["evaluations"],
            "IOTML_TOPIC_ALERT_STATE": out["alert_state"],
            "IOTML_DASHBOARD_HISTORY": "10m",
        },
        tmp_path / "dashboard.log",
    )
    children: list[Any] = []
    try:
        children.append(dashboard)
        dashboard.start()
        processor = processors(
            model_registry=fast_registry,
            model_name=MODEL,
            consumer_group=unique("g"),
            topic_readings=bridge.topic_readings,
            topic_predictions=out["predictions"],
            topic_alerts=out["alerts"],
            topic_alert_state=out["alert_state"],
            topic_evaluations=out["evaluations"],
            topic_processor_dlq=topics("processor-dlq"),
        )
        children.append(processor)
        bridge_port = free_port()
        bridge_proc = IotmlChild(
            [
                "bridge",
                "--kafka-bootstrap", bridge.kafka_bootstrap,
                "--mqtt-url", bridge.mqtt_url,
                "--mqtt-client-id", bridge.mqtt_client_id,
                "--topic-readings", bridge.topic_readings,
                "--topic-readings-dlq", bridge.topic_readings_dlq,
                "--http-port", str(bridge_port),
                "--http-host", "127.0.0.1",
            ],
            tmp_path / "bridge.log",
        )  # fmt: skip
        children.append(bridge_proc)
        wait_ready(bridge_proc.proc, bridge_port, timeout=60)

        browser.get(dashboard.url)
        wait_for_children(
            "the page's event stream",
            lambda: browser.find_element(By.ID, "status").text == "live",
            15,
        )
        browser.execute_script(WATCH_ALERTS)

        simulator = IotmlChild(
            [
                "simulate",
                "--mqtt-url", mosquitto_broker.url,
                "--sim-client-id", unique("sim"),
                "--sim-devices", str(DEVICES),
                "--sim-interval", INTERVAL,
                "--sim-faults", FAULT,
                "--sim-progress", "0",
            ],
            tmp_path / "simulate.log",
        )  # fmt: skip
        children.append(simulator)
        started = time.monotonic()

        # the fleet view lists the simulated devices as their first forecasts arrive
        fleet = {f"dev-{d:04d}" for d in range(DEVICES)}
        wait_for_children(
            "every simulated device in the fleet view",
            lambda: (
                {
                    r.get_attribute("data-device")
                    for r in browser.find_elements(By.CSS_SELECTOR, "#fleet .row:not([hidden])")
                }
                == fleet
            ),
            45,
            *children,
        )
        listed_after = time.monotonic() - started

        # the faulty device's chart gains points as new predictions arrive
        browser.find_element(By.CSS_SELECTOR, f'#fleet .row[data-device="{FAULTY}"]').click()
        chart = browser.find_element(By.ID, "chart")
        first = int(
            wait_for_children(
                "the device chart",
                lambda: (
                    chart.get_attribute("data-device") == FAULTY
                    and chart.get_attribute("data-points")
                ),
                15,
                *children,
            )
        )
        wait_for_children(
            "new points on the device chart",
            lambda: int(chart.get_attribute("data-points") or 0) >= first + 3,
            20,
            *children,
        )

        # the fault's alert: on the page, and when its record reached Kafka
        seen_ms = wait_for_children(
            f"the anomaly alert of {FAULTY} on the page",
            lambda: browser.execute_script(
                f"return (window.__alertSeen || {{}})['{FAULTY}/anomaly'];"
            ),
            60,
            *children,
        )
        alerted_after = time.monotonic() - started
        records = consume_all(kafka_conf, out["alerts"], 1, timeout=15, idle=0.3)
        opened = [(r, a) for r, a in _opened(records) if a.device_id == FAULTY]
        assert opened, f"no open alert of {FAULTY} on Kafka: {records}"
        record, alert = min(opened, key=lambda ra: ra[0].timestamp)
        assert alert.type == "anomaly" and alert.model_version is not None
        shown_after_ms = int(seen_ms) - record.timestamp
        assert 0 <= shown_after_ms < SHOWN_WITHIN_MS, shown_after_ms
        # only the fault opened alerts: no other device, no other type
        alerted = {(a.device_id, a.type) for _, a in _opened(records)}
        assert alerted == {(FAULTY, "anomaly")}, [a for _, a in _opened(records)]

        # the episode stays in the device view (the anomaly clears once the forecasts
        # follow the drop), and the chart still runs
        wait_for_children(
            "the anomaly episode in the device view",
            lambda: "anomaly" in browser.find_element(By.ID, "episodes").text,
            10,
            *children,
        )
        facts = browser.find_element(By.ID, "device-facts").text
        assert alert.model_version in facts
        screenshot = tmp_path / "dashboard-pipeline.png"
        browser.save_screenshot(str(screenshot))

        with urllib.request.urlopen(dashboard.url + "metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert "iotml_dashboard_clients 1.0" in metrics
        predictions = consume_all(kafka_conf, out["predictions"], 1, timeout=15, idle=0.3)
        assert {Prediction.from_json(r.value or b"").device_id for r in predictions} == fleet
        print(
            f"devices listed {listed_after:.1f}s after the simulator started; "
            f"alert on the page {alerted_after:.1f}s after, {shown_after_ms} ms after its "
            f"Kafka record; screenshot {screenshot}"
        )

        assert simulator.stop() == 0, simulator.text()
        assert bridge_proc.stop() == 0, bridge_proc.text()
        assert processor.stop() == 0, processor.text()
        assert dashboard.stop() == 0, dashboard.text()
    finally:
        for child in reversed(children):
            if child.proc is not None and child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()
