"""``iotml batch``: the batch view of recorded readings (the Lambda architecture's batch
layer), computed with the same replay code as ``iotml evaluate``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from iotml.core.records import Alert, Prediction
from models.replay import BatchView, Record, iter_clocked

if TYPE_CHECKING:
    from models.clock import ClockRules
    from models.registry import Artifact

#: Told ``(Kafka partition, readings of it replayed so far)`` as a replay goes.
Progress = Callable[[int, int], None]

PREDICTION_COLUMNS = (
    "device_id",
    "metric",
    "window_start",
    "window_end",
    "horizon_ms",
    "target_ts",
    "forecast",
    "last_value",
    "model_name",
    "model_version",
)


_TAGS = pa.map_(pa.string(), pa.string())


def replay_view(
    records: Iterable[Record],
    artifact: Artifact,
    grace_ms: int,
    rules: ClockRules,
    flush: bool = False,
    progress: Progress | None = None,
    every: int = 1000,
) -> BatchView:
    """The local engine's replay: :func:`models.replay.run_clocked`'s view (partitions in
    order, each in arrival order), telling ``progress`` every ``every`` readings and at the
    end of each partition how far it got. The records are handed to the replay one at a
    time (:func:`models.replay.iter_clocked`), so the count is of readings replayed, not
    read."""
    by_partition: dict[int, list[Record]] = {}
    for record in records:
        by_partition.setdefault(record[0], []).append(record)

    def told() -> Iterator[Record]:
        for partition in sorted(by_partition):
            done = 0
            for record in by_partition[partition]:
                yield record  # resumed once the replay has taken it in
                done += 1
                if progress is not None and done % every == 0:
                    progress(partition, done)
            if progress is not None and done % every:
                progress(partition, done)

    view = BatchView()
    for part in iter_clocked(told(), artifact, grace_ms, rules, flush):
        view.predictions.extend(part.predictions)
        view.alerts.extend(part.alerts)
        view.windows.extend(part.windows)
        view.late += part.late
    return view


def write_view(view: BatchView, out: Path, summary: dict[str, Any]) -> None:
    """``predictions.parquet``, ``alerts.parquet`` and ``summary.json`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    _write(predictions_table(view.predictions), out / "predictions.parquet")
    _write(alerts_table(view.alerts), out / "alerts.parquet")
    write_summary(out, summary)


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` under ``out``, replaced atomically."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True))
    tmp.replace(out / "summary.json")


PREDICTIONS_SCHEMA = pa.schema(
    [
        ("device_id", pa.string()),
        ("metric", pa.string()),
        ("window_start", pa.int64()),
        ("window_end", pa.int64()),
        ("horizon_ms", pa.int64()),
        ("target_ts", pa.int64()),
        ("forecast", pa.float64()),
        ("last_value", pa.float64()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("features", pa.string()),  # JSON object
        ("tags", _TAGS),
        ("anomaly_likelihood", pa.float64()),  # null until the device's errors are judged
    ]
)
ALERTS_SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("device_id", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("ts", pa.int64()),
        ("episode_start", pa.int64()),
        ("value", pa.float64()),
        ("threshold", pa.float64()),
        ("model_version", pa.string()),
        ("message", pa.string()),
        ("tags", _TAGS),
        ("v", pa.int32()),
    ]
)


def predictions_table(predictions: list[Prediction]) -> pa.Table:
    """The rows of ``predictions.parquet`` (features as a JSON object)."""
    rows = []
    for p in predictions:
        d = p.to_dict()
        rows.append(
            {
                **{c: d[c] for c in PREDICTION_COLUMNS},
                "features": json.dumps(d["features"]),
                "tags": list(d["tags"].items()),
                "anomaly_likelihood": p.anomaly_likelihood,
            }
        )
    return pa.Table.from_pylist(rows, schema=PREDICTIONS_SCHEMA)


def alerts_table(alerts: list[Alert]) -> pa.Table:
    """The rows of ``alerts.parquet``."""
    return pa.Table.from_pylist(
        [{**a.to_dict(), "tags": list(a.tags.items())} for a in alerts], schema=ALERTS_SCHEMA
    )


def _write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def publish_view(
    view: BatchView, kafka_conf: dict[str, Any], predictions_topic: str, alerts_topic: str
) -> None:
    """Write the view's predictions and alerts to Kafka (key = device id, timestamp = the
    window end / alert time), waiting for delivery."""
    publisher = Publisher(kafka_conf, predictions_topic, alerts_topic)
    publisher.send(view.predictions, view.alerts)
    publisher.close()


class Publisher:
    """One idempotent producer for a batch view sent in parts (:meth:`send` per part,
    :meth:`close` waits for delivery and raises :class:`~models.errors.ModelError` if
    any record failed)."""

    def __init__(
        self, kafka_conf: dict[str, Any], predictions_topic: str, alerts_topic: str
    ) -> None:
        from confluent_kafka import Producer

        self._producer = Producer({**kafka_conf, "acks": "all", "enable.idempotence": True})
        self._topics = (predictions_topic, alerts_topic)
        self.failed: list[str] = []

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failed.append(str(err))

    def send(self, predictions: list[Prediction], alerts: list[Alert]) -> None:
        predictions_topic, alerts_topic = self._topics
        records: list[tuple[str, Prediction | Alert, int]] = [
            (predictions_topic, p, p.window_end) for p in predictions
        ]
        records += [(alerts_topic, a, a.ts) for a in alerts]
        for topic, record, ts in records:
            while True:
                try:
                    self._producer.produce(
                        topic,
                        record.to_json(),
                        record.device_id.encode(),
                        timestamp=ts,
                        on_delivery=self._on_delivery,
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    self._producer.poll(0.5)
            self._producer.poll(0)

    def close(self) -> None:
        from models.errors import ModelError

        if self._producer.flush(60) or self.failed:
            raise ModelError(f"publishing the batch view failed: {self.failed[:3]}")
