"""`iotml batch` and `iotml archive` through the real Kafka broker."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from iotml.core.records import Reading
from models.archive import read_archive
from models.cli import archive, batch, evaluate
from tests.kafkatools import produce
from tests.model_fixtures import tiny_points, train_tiny_artifact

pytestmark = pytest.mark.brokers


def readings(minutes: int = 6) -> list[Reading]:
    return [
        Reading(device, ts, {"temperature": value, "load": 0.5}, {"site": "s1"})
        for device, ts, value in tiny_points(devices=3, minutes=minutes, seed=5)
    ]


def test_batch_from_kafka_equals_evaluate_on_the_same_readings(
    tmp_path: Path, kafka_conf: dict[str, Any], topics: Any
) -> None:
    registry = tmp_path / "registry"
    train_tiny_artifact(registry, residual_threshold=0.4, overheat_threshold=72.0)
    topic = topics("readings", partitions=4)
    rs = readings()
    produce(kafka_conf, topic, ((r.device_id, r.to_json()) for r in rs))
    out = tmp_path / "view"
    result = CliRunner().invoke(
        batch,
        [
            "--input",
            f"kafka://{topic}",
            "--kafka-bootstrap",
            kafka_conf["bootstrap.servers"],
            "--model-registry",
            str(registry),
            "--model-name",
            "temp",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    predictions = pq.read_table(out / "predictions.parquet").to_pylist()
    alerts = pq.read_table(out / "alerts.parquet").to_pylist()

    csv_path = tmp_path / "readings.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "device_id", "temperature"])
        writer.writerows((r.ts, r.device_id, r.metrics["temperature"]) for r in rs)
    result = CliRunner().invoke(
        evaluate,
        [
            "--model-registry",
            str(registry),
            "--model-name",
            "temp",
            "--input",
            str(csv_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    opened = sorted((a["alert_id"], a["ts"]) for a in alerts if a["event"] == "open")
    assert opened and opened == sorted((a["alert_id"], _ms(a["time"])) for a in report["alerts"])
    from models.registry import Registry
    from models.replay import run
    from models.sources import read_csv

    expected = run(read_csv(csv_path, "temperature", "x"), Registry(registry).load("temp"))
    got = sorted((p["device_id"], p["window_end"], p["forecast"]) for p in predictions)
    want = sorted((p.device_id, p.window_end, p.forecast) for p in expected.predictions)
    assert [g[:2] for g in got] == [w[:2] for w in want] and len(got) > 50
    assert all(abs(g[2] - w[2]) < 1e-4 for g, w in zip(got, want, strict=True))


def _ms(text: str) -> int:
    import datetime as dt

    return int(
        dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp() * 1000
    )


def test_archive_round_trips_readings_losslessly(
    tmp_path: Path, kafka_conf: dict[str, Any], topics: Any, unique: Any
) -> None:
    topic = topics("readings", partitions=2)
    rs = readings(minutes=3)
    rs.append(Reading("dev-x", 1_700_000_000_000 + 86_400_000, {"temperature": 1.5}, {}))
    produce(kafka_conf, topic, ((r.device_id, r.to_json()) for r in rs))
    produce(kafka_conf, topic, [(b"bad", b"not json")])
    root = tmp_path / "archive"
    result = CliRunner().invoke(
        archive,
        [
            "--kafka-bootstrap",
            kafka_conf["bootstrap.servers"],
            "--topic-readings",
            topic,
            "--archive-dir",
            str(root),
            "--consumer-group",
            unique("archive"),
            "--roll-rows",
            "200",
            "--exit-at-end",
        ],
    )
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["archived"] == len(rs) and stats["invalid"] == 1
    assert sorted(p.name for p in root.iterdir()) == ["date=2023-11-14", "date=2023-11-15"]
    files = list(root.glob("date=*/*.parquet"))
    assert 2 <= len(files) <= len(rs) // 200 + 4  # rolled by rows, not one file per record
    back = list(read_archive(root))
    key = lambda r: (r.device_id, r.ts)  # noqa: E731
    assert sorted(back, key=key) == sorted(rs, key=key)


def test_publish_view_writes_predictions_and_alerts_keyed_by_device(kafka_conf, topics):
    from iotml.core.eventtime import now_ms
    from iotml.core.records import Alert, Prediction
    from models.batch import publish_view
    from models.replay import BatchView
    from tests.kafkatools import consume_all

    t = now_ms() - 60_000
    p = Prediction(
        device_id="d1",
        metric="temperature",
        window_start=t - 10_000,
        window_end=t,
        horizon_ms=20_000,
        target_ts=t + 20_000,
        forecast=70.5,
        last_value=70.0,
        features={"mean": 70.1},
        model_name="m",
        model_version="v0001",
    )
    a = Alert(
        alert_id="x1",
        device_id="d2",
        type="anomaly",
        event="open",
        ts=t + 1,
        episode_start=t,
        value=1.0,
        threshold=0.5,
        model_version="v0001",
    )
    predictions, alerts = topics("predictions"), topics("alerts")
    publish_view(BatchView(predictions=[p], alerts=[a]), kafka_conf, predictions, alerts)
    [got_p] = consume_all(kafka_conf, predictions, 1)
    [got_a] = consume_all(kafka_conf, alerts, 1)
    assert (got_p.key, Prediction.from_json(got_p.value), got_p.timestamp) == (b"d1", p, t)
    assert (got_a.key, Alert.from_json(got_a.value), got_a.timestamp) == (b"d2", a, t + 1)
