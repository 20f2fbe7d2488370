"""Cold start through the real Kafka: a processor started on a registry holding only the
persistence baseline (``iotml train --baseline persistence``) forecasts from the
devices' first windows, and every prediction says persistence made it."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from iotml.core.fleet import SyntheticFleet, history
from iotml.core.records import Prediction, Reading
from models.cli import train
from tests.brokers.test_retrain_loop import send, wait_records

pytestmark = [pytest.mark.brokers]

MIN = 60_000


def test_a_processor_on_the_baseline_alone_writes_persistence_predictions(
    kafka_conf, one_partition_topics, processors, unique, tmp_path
):
    registry = tmp_path / "registry"
    args = ["--baseline", "persistence", f"--model-registry={registry}", "--model-name=cold"]
    args += ["--window=10s", "--horizon=20s", "--k=2"]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output

    t0 = (time.time_ns() // 1_000_000 - 4 * MIN) // 10_000 * 10_000
    fleet = SyntheticFleet(4, step_ms=1000, start_ms=t0, seed=3)
    readings = [
        Reading(s.device_id, s.ts, {"temperature": s.value})
        for s in history(fleet, 3 * MIN // 1000, t0)
    ]
    proc = processors(
        model_registry=registry,
        model_name="cold",
        consumer_group=unique("g"),
        heartbeat_interval="0s",
        **one_partition_topics,
    )
    send(kafka_conf, one_partition_topics["topic_readings"], readings)
    records = wait_records(
        kafka_conf, one_partition_topics["topic_predictions"], lambda r: len(r) >= 40, 90, proc
    )
    assert proc.stop() == 0
    predictions = [Prediction.from_json(r.value or b"") for r in records]
    assert {(p.model_version, p.model_kind) for p in predictions} == {("v0001", "persistence")}
    assert {p.device_id for p in predictions} == {r.device_id for r in readings}
    # persistence: the forecast is the window's last value
    assert all(abs(p.forecast - p.last_value) < 1e-3 for p in predictions)
    assert "kind persistence" in proc.text()
