"""The loads of ``bench_fleet.py``: a staggered fleet and churning device ids, written to
Kafka before a run's clock starts."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

Row = tuple[bytes, bytes, int]  # key, value, timestamp


def produce(conf: dict[str, Any], topic: str, rows: Iterator[Row], total: int) -> int:
    """Write ``rows`` to ``topic`` in large batches; returns how many."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            **conf,
            "linger.ms": 100,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "acks": "1",
        }
    )
    t0, n = time.monotonic(), 0
    for key, value, ts in rows:
        while True:
            try:
                producer.produce(topic, value, key, timestamp=ts)
                break
            except BufferError:
                producer.poll(0.05)
        n += 1
        if n % 500_000 == 0:
            producer.poll(0)
            print(f"  loaded {n:,}/{total:,} ({time.monotonic() - t0:.0f} s)", flush=True)
    assert producer.flush(300) == 0
    return n


def reading(dev: str, ts: int, value: float) -> bytes:
    import orjson

    return orjson.dumps(
        {"v": 1, "device_id": dev, "ts": ts, "metrics": {"temperature": value}, "tags": {}}
    )


def fleet_rows(devices: int, cadence_ms: int, ticks: int, start: int) -> Iterator[Row]:
    """``ticks`` readings per device, ``cadence_ms`` apart, devices staggered; in time order."""
    rng = np.random.default_rng(devices)
    base = rng.normal(70, 5, size=devices)
    phase = ((np.arange(devices) * cadence_ms) // devices).tolist()
    ids = [f"machine-{d:06d}" for d in range(devices)]
    keys = [i.encode() for i in ids]
    for k in range(ticks):
        values = base + 2 * np.sin(k * cadence_ms / 60_000 + np.arange(devices))
        values = np.round(values + rng.normal(0, 0.3, size=devices), 3).tolist()
        t0 = start + k * cadence_ms
        for d in range(devices):
            ts = t0 + phase[d]
            yield keys[d], reading(ids[d], ts, values[d]), ts


def churn_rows(args: argparse.Namespace, start: int) -> tuple[Iterator[Row], np.ndarray]:
    """Churning ids and resident devices interleaved in time order: the rows, and per row
    how many distinct ids the load has had up to it."""
    n, r = args.churn_devices, args.churn_readings
    span = args.churn_span * 1000
    arrive = np.arange(n, dtype=np.int64) * span // n
    ts = (arrive[:, None] + np.arange(r, dtype=np.int64) * args.churn_gap * 1000).ravel()
    dev = np.repeat(np.arange(n, dtype=np.int64), r)
    cadence = args.cadence * 1000
    ticks = (span + r * args.churn_gap * 1000) // cadence
    res = np.arange(args.resident, dtype=np.int64)
    rts = (res * cadence // max(args.resident, 1))[None, :] + cadence * np.arange(ticks)[:, None]
    ts = np.concatenate([ts, rts.ravel()]) + start
    dev = np.concatenate([dev, np.tile(-1 - res, ticks)])
    order = np.argsort(ts, kind="stable")
    ts, dev = ts[order], dev[order]
    first = np.zeros(len(dev), dtype=bool)
    first[np.unique(dev, return_index=True)[1]] = True
    values = np.round(np.random.default_rng(7).normal(70, 5, size=len(ts)), 3).tolist()

    def rows() -> Iterator[Row]:
        for t, d, v in zip(ts.tolist(), dev.tolist(), values, strict=True):
            name = f"churn-{d:07d}" if d >= 0 else f"resident-{-1 - d:05d}"
            yield name.encode(), reading(name, t, v), t

    return rows(), np.cumsum(first)
