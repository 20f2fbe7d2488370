"""A small Parquet archive as ``iotml archive`` writes it, for the Dask engine's tests.

Eight devices over 4 Kafka partitions (device ``i`` on partition ``i % 4``), readings
1 s apart across a UTC midnight, rolled into several files per date, one roll written
twice (the repeat a crash leaves), and one device that goes quiet for good.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.archive import write_rows

MIDNIGHT = 1_700_006_400_000  # 2023-11-15T00:00:00Z
START = MIDNIGHT - 6 * 60_000  # six minutes before it
QUIET = "dev-0003"  # stops after two minutes
PARTITIONS = 4


def archive_rows(devices: int = 8, minutes: int = 12, seed: int = 0) -> list[dict[str, Any]]:
    """Rows in arrival order, with offsets per partition in that order."""
    from tests.model_fixtures import tiny_points

    points = sorted(tiny_points(devices, minutes, seed=seed), key=lambda p: (p[1], p[0]))
    offsets = [0] * PARTITIONS
    rows = []
    for device, ts, value in points:
        t = START + ts - points[0][1]
        if device == QUIET and t >= START + 120_000:
            continue
        partition = int(device.rsplit("-", 1)[1]) % PARTITIONS
        metrics = {"temperature": value}
        if offsets[partition] % 13 == 0:
            metrics = {"load": 1.0}  # a reading without the model's metric moves the clock
        rows.append(
            {
                "device_id": device,
                "ts": t,
                "metrics": metrics,
                "tags": {"site": "a" if t < MIDNIGHT else "b"},
                "v": 1,
                "kafka_partition": partition,
                "kafka_offset": offsets[partition],
                "kafka_ts": t,
            }
        )
        offsets[partition] += 1
    return rows


def write_archive(root: Path, rows: list[dict[str, Any]], roll: int = 700) -> Path:
    """``rows`` in rolls of ``roll`` rows (each split by date), the second roll twice."""
    for i in range(0, len(rows), roll):
        write_rows(root, rows[i : i + roll])
        if i == roll:
            write_rows(root, rows[i : i + roll])
    return root
