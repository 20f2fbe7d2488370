"""``iotml batch``: the batch view of recorded readings (the Lambda architecture's batch
layer), computed with the same replay code as ``iotml evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from iotml.core.records import Alert, Prediction
from models.replay import BatchView

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


def write_view(view: BatchView, out: Path, summary: dict[str, Any]) -> None:
    """``predictions.parquet``, ``alerts.parquet`` and ``summary.json`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    preds = [p.to_dict() for p in view.predictions]
    table = pa.Table.from_pylist(
        [
            {**{c: d[c] for c in PREDICTION_COLUMNS}, "features": json.dumps(d["features"])}
            for d in preds
        ],
        schema=pa.schema(
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
            ]
        ),
    )
    _write(table, out / "predictions.parquet")
    alerts = pa.Table.from_pylist(
        [a.to_dict() for a in view.alerts],
        schema=pa.schema(
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
                ("v", pa.int32()),
            ]
        ),
    )
    _write(alerts, out / "alerts.parquet")
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True))
    tmp.replace(out / "summary.json")


def _write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def publish_view(
    view: BatchView, kafka_conf: dict[str, Any], predictions_topic: str, alerts_topic: str
) -> None:
    """Write the view's predictions and alerts to Kafka (key = device id, timestamp = the
    window end / alert time), waiting for delivery."""
    from confluent_kafka import Producer

    from models.errors import ModelError

    producer = Producer({**kafka_conf, "acks": "all", "enable.idempotence": True})
    failed: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    records: list[tuple[str, Prediction | Alert, int]] = [
        (predictions_topic, p, p.window_end) for p in view.predictions
    ]
    records += [(alerts_topic, a, a.ts) for a in view.alerts]
    for topic, record, ts in records:
        producer.produce(
            topic,
            record.to_json(),
            record.device_id.encode(),
            timestamp=ts,
            on_delivery=on_delivery,
        )
        producer.poll(0)
    if producer.flush(60) or failed:
        raise ModelError(f"publishing the batch view failed: {failed[:3]}")
