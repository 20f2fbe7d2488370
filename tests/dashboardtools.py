"""Helpers for the dashboard's tests and benchmark: synthetic records, the service as a
child process, and headless Chromium (Debian's ``chromium`` and ``chromium-driver``)."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from iotml.core.evaluations import Evaluation
from iotml.core.records import Alert, Prediction
from tests.childtools import stop_on_sigterm
from tests.shared_data import REPO

WINDOW_MS = 10_000
HORIZON_MS = 20_000


def temperature(device: int, ts: int) -> float:
    """A smooth, device-specific curve: something worth looking at in a screenshot."""
    phase = device * 0.9
    return 70 + 6 * math.sin(ts / 600_000 + phase) + 1.5 * math.sin(ts / 47_000 + 2 * phase)


def prediction(device: int, window_end: int, version: str = "3") -> Prediction:
    target = window_end + HORIZON_MS
    forecast = temperature(device, target) + 0.4 * math.sin(window_end / 13_000 + device)
    return Prediction(
        device_id=f"dev-{device:04d}",
        metric="temperature",
        window_start=window_end - WINDOW_MS,
        window_end=window_end,
        horizon_ms=HORIZON_MS,
        target_ts=target,
        forecast=forecast,
        last_value=temperature(device, window_end),
        features={},
        model_name="temperature",
        model_version=version,
    )


def evaluation(p: Prediction) -> Evaluation:
    return Evaluation(
        device_id=p.device_id,
        metric=p.metric,
        target_ts=p.target_ts,
        horizon_ms=p.horizon_ms,
        forecast=p.forecast,
        actual=temperature(int(p.device_id[4:]), p.target_ts),
        persistence=p.last_value,
        model_name=p.model_name,
        model_version=p.model_version,
    )


def alert(device: int, kind: str, event: str, ts: int, start: int) -> Alert:
    device_id = f"dev-{device:04d}"
    return Alert(
        alert_id=f"{device_id}:{kind}:{start}",
        device_id=device_id,
        type=kind,
        event=event,
        ts=ts,
        episode_start=start,
        value=temperature(device, ts),
        threshold=80.0,
        model_version="3",
        message=f"{kind} on {device_id}",
    )


class DashboardProc:
    """``iotml dashboard`` in a child process, configured by ``IOTML_*`` variables."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = int(env["IOTML_HTTP_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 60) -> DashboardProc:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "iotml", "dashboard"],
                env={**os.environ, **self.env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dashboard exited:\n{self.text()}")
            try:
                with urllib.request.urlopen(self.url + "readyz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"dashboard not ready in {timeout}s:\n{self.text()}")

    def stop(self, timeout: float = 20) -> int:
        assert self.proc is not None
        return stop_on_sigterm(self.proc, timeout, "dashboard", self.text)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _need(what: str, found: str | None) -> str:
    if found:
        return found
    message = f"{what} not found: apt-get install chromium chromium-driver (make setup does)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: failing instead of skipping)")
    pytest.skip(message)


def headless_chromium(width: int = 1440, height: int = 900) -> Any:
    """A Selenium driver of headless Chromium; skips the test (fails under ``CI=true``)
    when Chromium, its driver or Selenium is missing."""
    browser = _need("chromium", shutil.which("chromium") or shutil.which("chromium-browser"))
    driver_path = _need("chromedriver", shutil.which("chromedriver"))
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ModuleNotFoundError:
        _need("selenium (pip install selenium)", None)
        raise
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespaces for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_path), options=options)
