"""Helpers of the bridge's broker tests: settings, a bridge in a thread or a process,
readings to publish and the kill -9 scenario."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bridge.runtime import Bridge
from bridge.settings import BridgeSettings
from iotml.core.eventtime import now_ms
from iotml.stack.procs import free_port
from tests.kafkatools import consume_all, end_offsets
from tests.mqtttools import publish


def metric(bridge: Bridge, name: str, **labels: str) -> float:
    """A sample from the bridge's metrics registry, as ``/metrics`` shows it (0 if absent)."""
    value = bridge.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def readings(n: int, devices: int = 20, start: int = 0) -> list[tuple[str, bytes]]:
    ts = now_ms()
    return [
        (
            f"sensors/site-{i % 3}/dev-{i % devices:03d}/temperature",
            b'{"ts":%d,"temperature":%.2f,"seq":%d}' % (ts + i % 1000, 20 + i % 50, i),
        )
        for i in range(start, start + n)
    ]


def seqs(records: Sequence[Any]) -> list[int]:
    return [int(json.loads(r.value)["metrics"]["seq"]) for r in records]


@contextmanager
def running(settings: BridgeSettings) -> Iterator[Bridge]:
    bridge = Bridge(settings)
    thread = threading.Thread(target=bridge.run, name="bridge-under-test")
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not bridge.ready()[0]:
            assert thread.is_alive(), "the bridge stopped"
            assert time.monotonic() < deadline, f"bridge not ready: {bridge.ready()[1]}"
            time.sleep(0.05)
        time.sleep(0.3)  # the SUBACK
        yield bridge
    finally:
        bridge.stop()
        thread.join(60)
        assert not thread.is_alive()


def bridge_process(settings: BridgeSettings, http_port: int) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "iotml", "bridge",
        "--kafka-bootstrap", settings.kafka_bootstrap, "--mqtt-url", settings.mqtt_url,
        "--mqtt-client-id", settings.mqtt_client_id,
        "--topic-readings", settings.topic_readings,
        "--topic-readings-dlq", settings.topic_readings_dlq,
        "--http-port", str(http_port), "--http-host", "127.0.0.1",
        "--max-in-flight", "2000",
    ]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "bridge process exited"
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                time.sleep(0.3)
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("bridge process not ready")


@dataclass(frozen=True)
class KillRun:
    killed_at: int  # records in Kafka when the bridge was killed
    records: list[Any]  # everything in Kafka after the restarted bridge caught up
    returncode: int  # of the restarted bridge, stopped with SIGTERM
    out: bytes  # its output


def kill_9_mid_stream_and_restart(
    settings: BridgeSettings,
    mqtt_port: int,
    kafka_conf: dict[str, Any],
    total: int,
    devices: int = 20,
    consume_timeout: float = 120,
) -> KillRun:
    """Publish ``total`` readings while a bridge process runs, SIGKILL it at ~30 %, start
    it again, read everything back, then stop it with SIGTERM."""
    port = free_port()
    proc = bridge_process(settings, port)
    try:
        wait_ready(proc, port)
        publisher = threading.Thread(
            target=publish,
            args=(mqtt_port, readings(total, devices=devices)),
            kwargs={"pace": 0.0003},
        )
        publisher.start()
        while sum(end_offsets(kafka_conf, settings.topic_readings).values()) < total * 0.3:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = sum(end_offsets(kafka_conf, settings.topic_readings).values())
        publisher.join(120)
        proc = bridge_process(settings, port)
        wait_ready(proc, port)
        records = consume_all(kafka_conf, settings.topic_readings, total, timeout=consume_timeout)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return KillRun(killed_at, records, proc.returncode, out)
