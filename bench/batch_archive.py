"""The synthetic archives of ``bench_batch.py``: a fleet's temperatures written in the
layout ``iotml archive`` writes (date partitions, rolled part files, the archive's schema,
Kafka partition and offset per reading)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models.archive import SCHEMA, date_of

DAY = 86_400_000
START = 1_700_006_400_000  # 2023-11-15T00:00:00Z, a UTC midnight


def fleet_params(devices: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "base": rng.uniform(30.0, 60.0, devices),
        "amp": rng.uniform(2.0, 8.0, devices),
        "phase": rng.uniform(0.0, 2 * np.pi, devices),
    }


def values(p: dict[str, np.ndarray], dev: np.ndarray, ts: np.ndarray, rng: Any) -> np.ndarray:
    """A daily cycle per device plus sensor noise."""
    day = 2 * np.pi * (ts % DAY) / DAY
    return (
        p["base"][dev] + p["amp"][dev] * np.sin(day + p["phase"][dev]) + rng.normal(0, 0.3, len(ts))
    )


def write_archive(
    root: Path, devices: int, days: float, interval: int, partitions: int, roll: int, seed: int = 0
) -> int:
    """The archive of ``devices`` over ``days`` (vectorised, a roll at a time, in arrival
    order: all devices at one time, then the next); the number of readings."""
    params = fleet_params(devices, seed)
    rng = np.random.default_rng(seed + 1)
    ids = pa.array([f"dev-{i:05d}" for i in range(devices)])
    sites = pa.array([f"plant-{i % 7}" for i in range(devices)])
    part_of = (np.arange(devices) % partitions).astype(np.int32)
    next_offset = np.zeros(partitions, dtype=np.int64)
    steps = int(days * DAY) // interval
    per_roll = max(1, roll // devices)
    for s0 in range(0, steps, per_roll):
        stamps = START + interval * np.arange(s0, min(steps, s0 + per_roll), dtype=np.int64)
        for day in np.unique(stamps // DAY):  # a roll across midnight: a file per date
            ts = np.repeat(stamps[stamps // DAY == day], devices)
            dev = np.tile(np.arange(devices), len(ts) // devices)
            part = part_of[dev]
            offset = np.empty(len(ts), dtype=np.int64)
            for k in range(partitions):
                mask = part == k
                offset[mask] = next_offset[k] + np.arange(int(mask.sum()))
                next_offset[k] += int(mask.sum())
            _write(root, ts, dev, part, offset, values(params, dev, ts, rng), ids, sites)
    return steps * devices


def _write(
    root: Path,
    ts: np.ndarray,
    dev: np.ndarray,
    part: np.ndarray,
    offset: np.ndarray,
    temps: np.ndarray,
    ids: pa.Array,
    sites: pa.Array,
) -> None:
    n = len(ts)
    one = pa.array(np.arange(n + 1, dtype=np.int32))
    metrics = pa.MapArray.from_arrays(
        one, pc.take(pa.array(["temperature"]), np.zeros(n, dtype=np.int32)), temps
    )
    tags = pa.MapArray.from_arrays(
        one, pc.take(pa.array(["site"]), np.zeros(n, dtype=np.int32)), pc.take(sites, dev)
    )
    table = pa.Table.from_arrays(
        [
            pc.take(ids, dev),
            pa.array(ts),
            metrics.cast(SCHEMA.field("metrics").type),
            tags.cast(SCHEMA.field("tags").type),
            pa.array(np.ones(n, dtype=np.int32)),
            pa.array(part),
            pa.array(offset),
            pa.array(ts),
        ],
        schema=SCHEMA,
    )
    directory = root / f"date={date_of(int(ts[0]))}"
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table, directory / f"part-{int(ts[0])}-{uuid.uuid4().hex[:12]}.parquet", compression="zstd"
    )


def archive_sizes(root: Path) -> tuple[int, int]:
    """(bytes on disk, bytes as Arrow tables in memory: the archive loaded, columns only)."""
    disk = loaded = 0
    for path in root.glob("date=*/*.parquet"):
        disk += path.stat().st_size
        loaded += pq.read_table(path).nbytes
    return disk, loaded
