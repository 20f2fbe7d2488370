"""Where readings come from: CSV files, the Parquet archive, a Kafka topic, synthetic data.

Every source yields :data:`models.replay.Point` tuples ``(device_id, ts_ms, value)`` for one
metric, in arrival order per device (file order, archive/Kafka offset order).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from iotml.core.errors import RecordError
from iotml.core.headers import RECEIVED_AT
from iotml.core.records import Reading
from models.clock import arrival_time
from models.errors import DataError
from models.replay import Point, Record

KAFKA_SCHEME = "kafka://"
SYNTHETIC_SCHEME = "synthetic://"


def load_points(
    source: str,
    metric: str,
    device: str | None = None,
    kafka_conf: Mapping[str, Any] | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> list[Point]:
    """Readings of ``metric`` from ``source`` (see the module doc), optionally only those
    with ``start_ms <= ts < end_ms`` and of one ``device``."""
    if source.startswith(KAFKA_SCHEME):
        if kafka_conf is None:
            raise DataError("a kafka:// input needs the Kafka settings")
        topic = source[len(KAFKA_SCHEME) :]
        readings: Iterator[Reading] = (r for _, _, r, _ in read_kafka(kafka_conf, topic, start_ms))
        points = list(_points(readings, metric))
    elif source.startswith(SYNTHETIC_SCHEME):
        from models.synthetic import from_spec

        points = from_spec(source[len(SYNTHETIC_SCHEME) :], metric)
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(f"input {source} does not exist")
        if path.is_dir() or path.suffix == ".parquet":
            from models.archive import read_archive

            points = list(_points(read_archive(path), metric))
        else:
            points = read_csv(path, metric, device or "machine-1")
    if device is not None:
        points = [p for p in points if p[0] == device]
    if start_ms is not None or end_ms is not None:
        lo = start_ms if start_ms is not None else -(2**63)
        hi = end_ms if end_ms is not None else 2**63
        points = [p for p in points if lo <= p[1] < hi]
    if not points:
        raise DataError(f"no readings of metric {metric!r} in {source}")
    return points


def load_records(
    source: str,
    metric: str,
    kafka_conf: Mapping[str, Any] | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> list[Record]:
    """Like :func:`load_points`, with each reading's Kafka partition and arrival time (the
    bridge's ``iotml.received_at``) where the source keeps them: a topic keeps both, the
    archive the partition; files and synthetic data are one partition without arrival
    times. Readings without ``metric`` are kept (value ``None``): they move the clock. Each
    keeps its tags (none from files and synthetic data)."""
    lo = start_ms if start_ms is not None else -(2**63)
    hi = end_ms if end_ms is not None else 2**63
    found: Iterator[tuple[int, int | None, Reading]]
    if source.startswith(KAFKA_SCHEME):
        if kafka_conf is None:
            raise DataError("a kafka:// input needs the Kafka settings")
        topic = source[len(KAFKA_SCHEME) :]
        found = ((p, at, r) for p, _, r, at in read_kafka(kafka_conf, topic, start_ms))
    elif not source.startswith(SYNTHETIC_SCHEME) and (
        Path(source).is_dir() or source.endswith(".parquet")
    ):
        from models.archive import read_archive_records

        if not Path(source).exists():
            raise DataError(f"input {source} does not exist")
        found = ((p, None, r) for p, r in read_archive_records(Path(source)))
    else:
        points = load_points(source, metric, None, None, lo, hi)
        return [(0, None, (device, ts, value, {})) for device, ts, value in points]
    records: list[Record] = [
        (p, at, (r.device_id, r.ts, _value(r, metric), r.tags))
        for p, at, r in found
        if lo <= r.ts < hi
    ]
    if not any(point[2] is not None for _, _, point in records):
        raise DataError(f"no readings of metric {metric!r} in {source}")
    return records


def _value(reading: Reading, metric: str) -> float | None:
    value = reading.metrics.get(metric)
    return None if value is None else float(value)


def _points(readings: Iterator[Reading], metric: str) -> Iterator[Point]:
    for r in readings:
        value = r.metrics.get(metric)
        if value is not None:
            yield r.device_id, r.ts, float(value)


def read_csv(path: Path, metric: str, device: str) -> list[Point]:
    """``timestamp,value`` (NAB) or ``timestamp,<metric>[,device_id]`` CSV, in file order.
    Timestamps are epoch milliseconds or date-times (UTC unless they carry an offset)."""
    import pandas as pd

    df = pd.read_csv(path)
    if "timestamp" not in df.columns:
        raise DataError(f"{path}: no 'timestamp' column (columns: {list(df.columns)})")
    column = metric if metric in df.columns else "value" if "value" in df.columns else None
    if column is None:
        raise DataError(f"{path}: no column {metric!r} or 'value' (columns: {list(df.columns)})")
    df = df.dropna(subset=["timestamp", column])
    raw = df["timestamp"]
    if pd.api.types.is_numeric_dtype(raw):
        ts = raw.astype("int64")
    else:
        parsed = pd.to_datetime(raw, utc=True)
        ts = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    devices = df["device_id"].astype(str) if "device_id" in df.columns else [device] * len(df)
    return list(zip(devices, (int(t) for t in ts), (float(v) for v in df[column]), strict=True))


def read_kafka(
    conf: Mapping[str, Any], topic: str, start_ms: int | None = None, timeout: float = 30.0
) -> Iterator[tuple[int, int, Reading, int | None]]:
    """``(partition, offset, reading, arrival time)`` of every partition of ``topic`` (the
    arrival time from the bridge's ``iotml.received_at`` header), from the earliest
    offset (or the first at/after ``start_ms``) up to the end offsets taken at the start.
    Records that are not valid readings are skipped (they are the bridge's dead letters)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            **conf,
            "group.id": f"iotml-replay-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    try:
        try:
            md = consumer.list_topics(topic, timeout=timeout)
        except KafkaException as exc:
            raise DataError(f"cannot reach Kafka for topic {topic}: {exc}") from None
        if topic not in md.topics or md.topics[topic].error is not None:
            raise DataError(f"Kafka topic {topic!r} does not exist")
        parts = sorted(md.topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            for p in parts
        }
        starts = {p: ends[p][0] for p in parts}
        if start_ms is not None:
            found = consumer.offsets_for_times(
                [TopicPartition(topic, p, start_ms) for p in parts], timeout=timeout
            )
            for tp in found:
                starts[tp.partition] = tp.offset if tp.offset >= 0 else ends[tp.partition][1]
        for p in parts:
            start, end = starts[p], ends[p][1]
            if start >= end:
                continue
            consumer.assign([TopicPartition(topic, p, start)])
            idle_since = time.monotonic()
            while True:
                batch = consumer.consume(1000, 0.5)
                done = False
                for msg in batch:
                    if msg.error():
                        continue
                    if msg.offset() >= end:
                        done = True
                        break
                    try:
                        reading = Reading.from_json(msg.value() or b"")
                    except RecordError:
                        continue
                    yield p, msg.offset(), reading, _arrived(msg.headers())
                position = consumer.position([TopicPartition(topic, p)])[0].offset
                if done or position >= end:
                    break  # (transaction markers take offsets but are never delivered)
                if batch:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > timeout:
                    raise DataError(f"{topic}[{p}]: stuck at offset {position} of {end}")
    finally:
        consumer.close()


def _arrived(headers: Any) -> int | None:
    for key, value in headers or ():
        if key == RECEIVED_AT and isinstance(value, bytes):
            return arrival_time(value.decode("ascii", "replace"))
    return None
