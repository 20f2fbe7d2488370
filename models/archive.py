"""The readings archive: raw readings as Parquet, Hive-partitioned by event date.

Layout: ``<archive_dir>/date=YYYY-MM-DD/part-<first ts>-<random>.parquet``, one row per
reading with the schema :data:`SCHEMA` (``metrics``/``tags`` keep the record as sent, so
:func:`read_archive` gives back equal :class:`~iotml.core.records.Reading` objects). Files are
rolled by rows, size or wall time, written under a temporary name, fsynced and renamed;
offsets are committed only after that, so a crash repeats readings rather than losing
them; :func:`read_archive` drops such repeats by ``(kafka_partition, kafka_offset)``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from iotml.core.errors import RecordError
from iotml.core.records import Reading
from models.errors import DataError
from models.settings import ArchiveSettings

log = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("ts", pa.int64(), nullable=False),  # event time, epoch ms UTC
        pa.field("metrics", pa.map_(pa.string(), pa.float64()), nullable=False),
        pa.field("tags", pa.map_(pa.string(), pa.string()), nullable=False),
        pa.field("v", pa.int32(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("kafka_ts", pa.int64(), nullable=False),  # the record's Kafka timestamp
    ]
)
_ROW_BYTES = 120  # rough size of one row in memory, for the size-based roll


def date_of(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def write_rows(root: Path, rows: list[dict[str, Any]], compression: str = "zstd") -> list[Path]:
    """Write rows (dicts with the :data:`SCHEMA` fields) as one file per date; durable on
    return."""
    by_date: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_date[date_of(row["ts"])].append(row)
    written = []
    for day, day_rows in sorted(by_date.items()):
        directory = root / f"date={day}"
        directory.mkdir(parents=True, exist_ok=True)
        first = min(r["ts"] for r in day_rows)
        final = directory / f"part-{first}-{uuid.uuid4().hex[:12]}.parquet"
        tmp = directory / f".{final.name}.tmp"
        table = pa.Table.from_pylist(
            [
                {**r, "metrics": list(r["metrics"].items()), "tags": list(r["tags"].items())}
                for r in day_rows
            ],
            schema=SCHEMA,
        )
        pq.write_table(table, tmp, compression=None if compression == "none" else compression)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        written.append(final)
    return written


def read_archive(root: Path) -> Iterator[Reading]:
    """Every archived reading, in Kafka order per partition, without repeats."""
    return (reading for _, reading in read_archive_records(root))


def read_archive_records(root: Path) -> Iterator[tuple[int, Reading]]:
    """``(Kafka partition, reading)`` of every archived reading, in Kafka order per
    partition, without repeats."""
    files = sorted(root.glob("date=*/*.parquet")) if root.is_dir() else [root]
    if not files:
        raise DataError(f"no Parquet files under {root}")
    tables = [pq.read_table(f, schema=SCHEMA) for f in files]
    table = pa.concat_tables(tables).sort_by(
        [("kafka_partition", "ascending"), ("kafka_offset", "ascending")]
    )
    seen: set[tuple[int, int]] = set()
    for row in table.to_pylist():
        key = (row["kafka_partition"], row["kafka_offset"])
        if key in seen:
            continue
        seen.add(key)
        yield (
            row["kafka_partition"],
            Reading(
                device_id=row["device_id"],
                ts=row["ts"],
                metrics=dict(row["metrics"]),
                tags=dict(row["tags"]),
                v=row["v"],
            ),
        )


def run_archive(s: ArchiveSettings) -> dict[str, int]:
    """Consume the readings topic into the archive until SIGTERM/SIGINT (or, with
    ``exit_at_end``, until caught up). Returns counters."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            **s.kafka_config(),
            "group.id": s.consumer_group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    stats = {"archived": 0, "invalid": 0, "files": 0}
    rows: list[dict[str, Any]] = []
    next_offsets: dict[int, int] = {}
    opened = time.monotonic()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    def roll() -> None:
        nonlocal rows, opened
        if rows:
            stats["files"] += len(write_rows(s.archive_dir, rows, s.compression))
            stats["archived"] += len(rows)
            log.info("archived %d readings (total %d)", len(rows), stats["archived"])
        if next_offsets:
            consumer.commit(
                offsets=[TopicPartition(s.topic_readings, p, o) for p, o in next_offsets.items()],
                asynchronous=False,
            )
        rows, opened = [], time.monotonic()
        next_offsets.clear()

    def on_revoke(_consumer: Any, _partitions: Any) -> None:
        roll()  # commit what we hold before another archiver takes the partitions

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, stop)
    consumer.subscribe([s.topic_readings], on_revoke=on_revoke)
    try:
        while not stopping:
            batch = consumer.consume(1000, 0.5)
            for msg in batch:
                if msg.error():
                    log.warning("consumer error: %s", msg.error())
                    continue
                next_offsets[msg.partition()] = msg.offset() + 1
                try:
                    r = Reading.from_json(msg.value() or b"")
                except RecordError as exc:
                    stats["invalid"] += 1
                    log.warning(
                        "not archived: %s[%d]@%d is not a reading (%s)",
                        msg.topic(),
                        msg.partition(),
                        msg.offset(),
                        exc.reason,
                    )
                    continue
                rows.append(
                    {
                        "device_id": r.device_id,
                        "ts": r.ts,
                        "metrics": dict(r.metrics),
                        "tags": dict(r.tags),
                        "v": r.v,
                        "kafka_partition": msg.partition(),
                        "kafka_offset": msg.offset(),
                        "kafka_ts": msg.timestamp()[1],
                    }
                )
            full = len(rows) >= s.roll_rows or len(rows) * _ROW_BYTES >= s.roll_bytes
            if full or (rows and time.monotonic() - opened >= s.roll_interval / 1000):
                roll()
            if s.exit_at_end and not batch and _caught_up(consumer):
                break
        roll()
    finally:
        consumer.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return stats


def _caught_up(consumer: Any) -> bool:
    assignment = consumer.assignment()
    if not assignment:
        return False
    for tp in consumer.position(assignment):
        high = consumer.get_watermark_offsets(tp, timeout=10)[1]
        if (tp.offset < 0 and high > 0) or (tp.offset >= 0 and tp.offset < high):
            return False
    return True
