"""``iotml processor`` as real processes against the real Kafka.

Readings are the NAB machine-temperature series (or synthetic 1 s series for the clock
tests), stamped close to now so they are inside the accepted event-time range.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from iotml import headers as h
from iotml.records import Alert, Prediction, Reading
from models import Registry
from models.replay import run as batch_run
from tests.kafkatools import Record, consume_all, produce
from tests.model_fixtures import train_tiny_artifact

pytestmark = [pytest.mark.brokers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FIVE_MIN = 300_000


# -- helpers ------------------------------------------------------------------------------


def nab_series(path: Path, days: int = 3) -> list[float]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    per_day = 288
    return [float(r["value"]) for r in rows[-days * per_day :]]


def fleet(
    values: list[float], devices: int, end_ts: int, step: int = FIVE_MIN, offset: float = 0.5
) -> list[Reading]:
    """Readings for ``devices`` devices, interleaved in event-time order, the last at
    ``end_ts``. Device i reads the series plus ``i * offset``."""
    start = end_ts - (len(values) - 1) * step
    return [
        Reading(f"dev-{d}", start + i * step, {"temperature": v + d * offset})
        for i, v in enumerate(values)
        for d in range(devices)
    ]


def send(conf: dict[str, Any], topic: str, readings: list[Reading]) -> None:
    from confluent_kafka import Producer

    producer = Producer({**conf, "acks": "all", "linger.ms": 5})
    for r in readings:
        producer.produce(topic, r.to_json(), r.device_id.encode(), timestamp=r.ts)
    assert producer.flush(60) == 0


def points(readings: list[Reading]) -> list[tuple[str, int, float]]:
    return [(r.device_id, r.ts, float(r.metrics["temperature"])) for r in readings]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ProcessorProc:
    """``iotml processor`` in a child process with settings from the environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ProcessorProc:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "iotml", "processor"],
                env={**os.environ, **self.env},
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"processor did not stop on {sig}; log:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def processors(
    kafka_conf: dict[str, Any], unique: Callable[[str], str], tmp_path: Path
) -> Iterator[Callable[..., ProcessorProc]]:
    started: list[ProcessorProc] = []

    def make(name: str = "p", **settings: Any) -> ProcessorProc:
        env = {
            "IOTML_KAFKA_BOOTSTRAP": kafka_conf["bootstrap.servers"],
            "IOTML_HTTP_PORT": "0",
            "IOTML_COMMIT_INTERVAL": "500ms",
            "IOTML_RELOAD_INTERVAL": "1s",
            "IOTML_HEARTBEAT_INTERVAL": "1s",
            "IOTML_STATE_DIR": str(tmp_path / f"state-{name}"),
        }
        env.update({f"IOTML_{k.upper()}": str(v) for k, v in settings.items()})
        proc = ProcessorProc(env, tmp_path / f"{name}.log").start()
        started.append(proc)
        return proc

    yield make
    for p in started:
        if p.proc is not None and p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


@pytest.fixture
def pipeline_topics(topics: Callable[..., str]) -> dict[str, str]:
    return {
        "topic_readings": topics("readings", 4),
        "topic_predictions": topics("predictions", 4),
        "topic_alerts": topics("alerts", 4),
        "topic_processor_dlq": topics("processor-dlq", 1),
    }


def wait_for(
    conf: dict[str, Any],
    topic: str,
    done: Callable[[list[Record]], bool],
    timeout: float,
    proc: ProcessorProc | None = None,
) -> list[Record]:
    deadline = time.monotonic() + timeout
    records: list[Record] = []
    while time.monotonic() < deadline:
        records = consume_all(conf, topic, timeout=5, idle=0.3)
        if done(records):
            return records
        if proc is not None and proc.proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"processor exited:\n{proc.text()[-3000:]}")
        time.sleep(0.5)
    log = proc.text()[-3000:] if proc else ""
    raise AssertionError(f"timed out on {topic}: {len(records)} records\n{log}")


def preds(records: list[Record]) -> list[Prediction]:
    return [Prediction.from_json(r.value or b"") for r in records]


def alerts_of(records: list[Record]) -> list[Alert]:
    return [Alert.from_json(r.value or b"") for r in records]


def window_keys(predictions: list[Prediction]) -> Counter[tuple[str, int]]:
    return Counter((p.device_id, p.window_start) for p in predictions)


# -- end to end and stream-batch parity --------------------------------------------------


@pytest.fixture
def nab_fleet(nab_csv: Path) -> list[Reading]:
    end = (now_ms() - 3_600_000) // FIVE_MIN * FIVE_MIN
    return fleet(nab_series(nab_csv, days=3), devices=4, end_ts=end)


@pytest.fixture
def nab_registry(tmp_path: Path, nab_fleet: list[Reading]) -> Path:
    reg = tmp_path / "registry"
    train_tiny_artifact(
        reg,
        name="nab",
        window="30m",
        horizon="1h",
        k=2,
        metric="temperature",
        points=points(nab_fleet),
        residual_threshold=2.0,
        overheat_threshold=95.0,
        low_limit=60.0,
        min_duration_ms=0,
    )
    return reg


def test_nab_fleet_gives_one_prediction_per_closed_window_equal_to_the_batch_path(
    kafka_conf, pipeline_topics, processors, unique, nab_fleet, nab_registry
):
    artifact = Registry(nab_registry).load("nab")
    batch = batch_run(points(nab_fleet), artifact, grace_ms=0, flush=False)
    assert len(batch.predictions) > 400 and batch.alerts, "the fixture should produce alerts"

    send(kafka_conf, pipeline_topics["topic_readings"], nab_fleet)
    proc = processors(
        model_registry=nab_registry,
        model_name="nab",
        consumer_group=unique("g"),
        **pipeline_topics,
    )
    got = wait_for(
        kafka_conf,
        pipeline_topics["topic_predictions"],
        lambda r: len(r) >= len(batch.predictions),
        timeout=120,
        proc=proc,
    )
    alerts = wait_for(
        kafka_conf,
        pipeline_topics["topic_alerts"],
        lambda r: len(r) >= len(batch.alerts),
        timeout=30,
        proc=proc,
    )
    assert proc.stop() == 0
    stream = preds(got)

    # one prediction per device per closed window, keyed by device, stamped at window end
    assert window_keys(stream) == window_keys(batch.predictions)
    assert all(r.key == p.device_id.encode() for r, p in zip(got, stream, strict=True))
    assert all(r.timestamp == p.window_end for r, p in zip(got, stream, strict=True))
    assert all(p.window_end - p.window_start == 1_800_000 for p in stream)
    assert all(r.headers[h.MODEL_VERSION] == "v0001" for r in got)

    # parity: same features, forecasts within float tolerance, same alerts and ids
    by_window = {(p.device_id, p.window_start): p for p in batch.predictions}
    for p in stream:
        b = by_window[(p.device_id, p.window_start)]
        assert p.features.keys() == b.features.keys()
        for name, value in p.features.items():
            assert value == pytest.approx(b.features[name], rel=1e-9, abs=1e-9), name
        assert p.forecast == pytest.approx(b.forecast, rel=1e-5, abs=1e-5)
        assert (p.model_version, p.target_ts) == (b.model_version, b.target_ts)
    model_alerts = [a for a in alerts_of(alerts) if a.type != "device_silent"]
    key = lambda a: (a.alert_id, a.event, a.ts)  # noqa: E731
    assert sorted(map(key, model_alerts)) == sorted(map(key, batch.alerts))

    dlq = consume_all(kafka_conf, pipeline_topics["topic_processor_dlq"], timeout=5)
    assert dlq == []
