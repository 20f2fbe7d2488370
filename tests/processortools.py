"""Helpers of the processor's broker tests: readings to Kafka, outputs back."""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iotml.core.records import Alert, Prediction, Reading
from tests.brokers.conftest import ProcessorProc
from tests.kafkatools import Record, consume_all

FIVE_MIN = 300_000


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


def synthetic(devices: list[str], start: int, seconds: int, base: float = 20.0) -> list[Reading]:
    """1 s readings, interleaved in event-time order."""
    return [
        Reading(dev, start + i * 1000, {"temperature": base + d + (i % 17) * 0.1})
        for i in range(seconds)
        for d, dev in enumerate(devices)
    ]
