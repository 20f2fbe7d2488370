"""``iotml dashboard`` end to end: records in the real Kafka, the service as a child
process, the page in headless Chromium. Saves the README's screenshot (docs/dashboard.png).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from iotml.stack.procs import free_port
from tests.dashboardtools import (
    WINDOW_MS,
    DashboardProc,
    alert,
    evaluation,
    headless_chromium,
    prediction,
)
from tests.shared_data import REPO

DEVICES = 8
HISTORY_WINDOWS = 240  # 40 minutes of 10 s windows, all older than the service's start


def _produce(producer: Producer, topic: str, key: str, value: bytes, ts: int) -> None:
    producer.produce(topic, value, key.encode(), timestamp=ts)


@pytest.fixture
def dashboard_topics(topics: Callable[..., str]) -> dict[str, str]:
    return {
        "predictions": topics("predictions", partitions=2),
        "alerts": topics("alerts", partitions=2),
        "evaluations": topics("evaluations", partitions=2),
        "alert_state": topics("alert-state", partitions=2, **{"cleanup.policy": "compact"}),
    }


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = headless_chromium()
    yield driver
    driver.quit()


def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_the_page_shows_history_live_forecasts_and_a_new_alert(
    kafka_conf: dict[str, Any],
    dashboard_topics: dict[str, str],
    browser: Any,
    tmp_path: Any,
) -> None:
    from selenium.webdriver.common.by import By

    t = dashboard_topics
    producer = Producer({**kafka_conf, "linger.ms": 5})
    now = int(time.time() * 1000) // WINDOW_MS * WINDOW_MS
    start = now - HISTORY_WINDOWS * WINDOW_MS
    for i in range(HISTORY_WINDOWS):
        end = start + i * WINDOW_MS
        for d in range(DEVICES):
            p = prediction(d, end)
            _produce(producer, t["predictions"], p.device_id, p.to_json(), end)
            e = evaluation(p)
            _produce(producer, t["evaluations"], e.device_id, e.to_json(), e.target_ts)
    # an episode that opened and cleared 25 minutes ago (shaded on dev-0003's chart)...
    for a in (
        alert(3, "anomaly", "open", now - 1_500_000, now - 1_500_000),
        alert(3, "anomaly", "cleared", now - 1_320_000, now - 1_500_000),
    ):
        _produce(producer, t["alerts"], a.device_id, a.to_json(), a.ts)
    # ...and one that opened two hours ago: only the compacted alert-state topic still has it
    old = alert(5, "overheat_predicted", "open", now - 7_200_000, now - 7_200_000)
    _produce(producer, t["alert_state"], f"{old.device_id}/{old.type}", old.to_json(), old.ts)
    assert producer.flush(30) == 0

    service = DashboardProc(
        {
            "IOTML_KAFKA_BOOTSTRAP": kafka_conf["bootstrap.servers"],
            "IOTML_HTTP_PORT": str(free_port()),
            "IOTML_TOPIC_PREDICTIONS": t["predictions"],
            "IOTML_TOPIC_ALERTS": t["alerts"],
            "IOTML_TOPIC_EVALUATIONS": t["evaluations"],
            "IOTML_TOPIC_ALERT_STATE": t["alert_state"],
            "IOTML_DASHBOARD_HISTORY": "1h",
        },
        tmp_path / "dashboard.log",
    ).start()
    stop_live = threading.Event()

    def live() -> None:
        """New windows for every device, twice a second (the clock runs fast)."""
        end = now
        while not stop_live.is_set():
            end += WINDOW_MS
            for d in range(DEVICES):
                p = prediction(d, end)
                _produce(producer, t["predictions"], p.device_id, p.to_json(), end)
            producer.flush(5)
            stop_live.wait(0.5)

    feeder = threading.Thread(target=live, name="test-live-predictions")
    try:
        browser.get(service.url)
        rows = _wait(
            "every device in the fleet view",
            lambda: (
                (r := browser.find_elements(By.CSS_SELECTOR, "#fleet .row:not([hidden])"))
                and len(r) == DEVICES
                and r
            ),
            15,
        )
        listed = {r.get_attribute("data-device") for r in rows}
        assert listed == {f"dev-{d:04d}" for d in range(DEVICES)}
        # the alert rebuilt from alert-state puts its device on top
        assert rows[0].get_attribute("data-device") == "dev-0005"
        assert "overheat_predicted" in rows[0].text

        browser.get(service.url + "#/device/dev-0003")
        chart = browser.find_element(By.ID, "chart")
        history = int(
            _wait("the device chart", lambda: chart.get_attribute("data-points"), 15) or 0
        )
        assert history == HISTORY_WINDOWS  # refilled from Kafka at start, not empty

        feeder.start()
        _wait(
            "new points on the device chart",
            lambda: int(chart.get_attribute("data-points") or 0) >= history + 3,
            15,
        )

        opened = time.monotonic()
        fresh = alert(3, "anomaly", "open", now + 60_000, now - 240_000)
        _produce(producer, t["alerts"], fresh.device_id, fresh.to_json(), fresh.ts)
        producer.flush(5)
        _wait(
            "the new alert on the page",
            lambda: browser.find_elements(
                By.CSS_SELECTOR, '#alerts .alert[data-device="dev-0003"][data-type="anomaly"]'
            ),
            5,
        )
        shown_after = time.monotonic() - opened
        assert shown_after < 5

        facts = browser.find_element(By.ID, "device-facts").text
        assert "3" in facts and "anomaly" in facts  # model version, open alert
        browser.find_element(By.CSS_SELECTOR, '#ranges button[data-range="3600000"]').click()
        time.sleep(1.0)  # a render or two with the last points
        docs = REPO / "docs"
        docs.mkdir(exist_ok=True)
        browser.save_screenshot(str(docs / "dashboard.png"))

        with urllib.request.urlopen(service.url + "metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert "iotml_dashboard_clients 1.0" in metrics
        with urllib.request.urlopen(service.url + "api/devices/dev-0003", timeout=5) as r:
            view = json.loads(r.read())
        assert view["skill"] is not None and view["mv"] == "3"
    finally:
        stop_live.set()
        if feeder.is_alive():
            feeder.join(10)
        code = service.stop()
    assert code == 0, service.text()
