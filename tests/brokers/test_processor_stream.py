"""``iotml processor`` as real processes against the real Kafka.

Readings are the NAB machine-temperature series (or synthetic 1 s series for the clock
tests), stamped close to now so they are inside the accepted event-time range.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from iotml.core import headers as h
from iotml.core.evaluations import Evaluation
from iotml.core.records import Reading
from models import Registry
from models.evaluation import evaluate
from models.replay import run as batch_run
from tests.kafkatools import Record, consume_all
from tests.model_fixtures import train_tiny_artifact
from tests.processortools import (
    FIVE_MIN,
    alerts_of,
    fleet,
    nab_series,
    now_ms,
    points,
    preds,
    send,
    synthetic,
    wait_for,
    window_keys,
)

pytestmark = [pytest.mark.brokers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


# -- end to end and stream-batch parity --------------------------------------------------


@pytest.fixture
def nab_fleet(nab_csv: Path) -> list[Reading]:
    end = (now_ms() - 3_600_000) // FIVE_MIN * FIVE_MIN
    return fleet(nab_series(nab_csv, days=3), devices=4, end_ts=end)


@pytest.fixture
def nab_registry(tmp_path: Path, nab_fleet: list[Reading]) -> Path:
    reg = tmp_path / "registry"
    train_tiny_artifact(
        reg,
        name="nab",
        window="30m",
        horizon="1h",
        k=2,
        metric="temperature",
        points=points(nab_fleet),
        residual_threshold=2.0,
        overheat_threshold=95.0,
        low_limit=60.0,
        min_duration_ms=0,
    )
    return reg


def test_nab_fleet_gives_one_prediction_per_closed_window_equal_to_the_batch_path(
    kafka_conf, pipeline_topics, processors, unique, nab_fleet, nab_registry
):
    artifact = Registry(nab_registry).load("nab")
    batch = batch_run(points(nab_fleet), artifact, grace_ms=0, flush=False)
    assert len(batch.predictions) > 400 and batch.alerts, "the fixture should produce alerts"

    send(kafka_conf, pipeline_topics["topic_readings"], nab_fleet)
    proc = processors(
        model_registry=nab_registry,
        model_name="nab",
        consumer_group=unique("g"),
        **pipeline_topics,
    )
    got = wait_for(
        kafka_conf,
        pipeline_topics["topic_predictions"],
        lambda r: len(r) >= len(batch.predictions),
        timeout=120,
        proc=proc,
    )
    alerts = wait_for(
        kafka_conf,
        pipeline_topics["topic_alerts"],
        lambda r: len(r) >= len(batch.alerts),
        timeout=30,
        proc=proc,
    )
    assert proc.stop() == 0
    stream = preds(got)

    # one prediction per device per closed window, keyed by device, stamped at window end
    assert window_keys(stream) == window_keys(batch.predictions)
    assert all(r.key == p.device_id.encode() for r, p in zip(got, stream, strict=True))
    assert all(r.timestamp == p.window_end for r, p in zip(got, stream, strict=True))
    assert all(p.window_end - p.window_start == 1_800_000 for p in stream)
    assert all(r.headers[h.MODEL_VERSION] == "v0001" for r in got)

    # parity: same features, forecasts within float tolerance, same alerts and ids
    by_window = {(p.device_id, p.window_start): p for p in batch.predictions}
    for p in stream:
        b = by_window[(p.device_id, p.window_start)]
        assert p.features.keys() == b.features.keys()
        for name, value in p.features.items():
            assert value == pytest.approx(b.features[name], rel=1e-9, abs=1e-9), name
        assert p.forecast == pytest.approx(b.forecast, rel=1e-5, abs=1e-5)
        assert (p.model_version, p.target_ts) == (b.model_version, b.target_ts)
    model_alerts = [a for a in alerts_of(alerts) if a.type != "device_silent"]
    key = lambda a: (a.alert_id, a.event, a.ts)  # noqa: E731
    assert sorted(map(key, model_alerts)) == sorted(map(key, batch.alerts))

    dlq = consume_all(kafka_conf, pipeline_topics["topic_processor_dlq"], timeout=5)
    assert dlq == []

    # live scoring: the processor's MAE on these readings is the one `iotml evaluate` gives
    scored = [
        Evaluation.from_json(r.value or b"")
        for r in consume_all(kafka_conf, pipeline_topics["topic_evaluations"], timeout=10)
    ]
    report = evaluate(points(nab_fleet), artifact).report
    assert len(scored) == report["n"]
    live_mae = sum(e.abs_error for e in scored) / len(scored)
    live_persistence = sum(e.persistence_abs_error for e in scored) / len(scored)
    print(f"live mae {live_mae:.6f} vs evaluate {report['mae']:.6f} (n={len(scored)})")
    assert live_mae == pytest.approx(report["mae"], abs=1e-5)
    assert live_persistence == pytest.approx(report["persistence_mae"], abs=1e-5)


# -- quiet devices, restart after downtime -------------------------------------------------


def test_quiet_device_closes_its_last_window_goes_silent_and_clears_when_back(
    kafka_conf, pipeline_topics, processors, unique, tiny_registry
):
    devices = [f"dev-{i}" for i in range(6)]
    start = (now_ms() - 300_000) // 10_000 * 10_000
    first = synthetic(devices, start, 60)  # everyone for 60 s
    rest = synthetic(devices[1:], start + 60_000, 60)  # dev-0 goes quiet
    send(kafka_conf, pipeline_topics["topic_readings"], first + rest)
    proc = processors(
        model_registry=tiny_registry,
        model_name="tiny",
        consumer_group=unique("g"),
        silence_timeout="20s",
        **pipeline_topics,
    )

    def quiet_closed_and_silent(records: list[Record]) -> bool:
        return any(a.device_id == "dev-0" and a.type == "device_silent" for a in alerts_of(records))

    alerts = wait_for(
        kafka_conf, pipeline_topics["topic_alerts"], quiet_closed_and_silent, 90, proc
    )
    silent = [a for a in alerts_of(alerts) if a.device_id == "dev-0" and a.type == "device_silent"]
    assert [(a.event, a.episode_start) for a in silent] == [("open", start + 59_000 + 20_000)]
    quiet = [
        p
        for p in preds(consume_all(kafka_conf, pipeline_topics["topic_predictions"], timeout=10))
        if p.device_id == "dev-0"
    ]
    assert max(p.window_start for p in quiet) == start + 50_000  # its last window closed

    send(kafka_conf, pipeline_topics["topic_readings"], synthetic(["dev-0"], start + 200_000, 3))

    def cleared(records: list[Record]) -> bool:
        return any(
            a.device_id == "dev-0" and a.type == "device_silent" and a.event == "cleared"
            for a in alerts_of(records)
        )

    alerts = wait_for(kafka_conf, pipeline_topics["topic_alerts"], cleared, 60, proc)
    clear = [
        a
        for a in alerts_of(alerts)
        if a.device_id == "dev-0" and a.type == "device_silent" and a.event == "cleared"
    ]
    assert [a.alert_id for a in clear] == [silent[0].alert_id]
    assert proc.stop() == 0


def test_restart_after_ten_minutes_of_downtime_does_not_dead_letter_the_backlog(
    kafka_conf, pipeline_topics, processors, unique, tiny_registry
):
    devices = [f"dev-{i}" for i in range(4)]
    start = (now_ms() - 1_800_000) // 10_000 * 10_000
    before = synthetic(devices, start, 600)  # 10 min while the processor runs
    during = synthetic(devices, start + 600_000, 600)  # 10 min of event time while down
    artifact = Registry(tiny_registry).load("tiny")
    group = unique("g")
    settings = dict(
        model_registry=tiny_registry, model_name="tiny", consumer_group=group, **pipeline_topics
    )

    send(kafka_conf, pipeline_topics["topic_readings"], before)
    expected_before = batch_run(points(before), artifact).predictions
    proc = processors("first", **settings)
    wait_for(
        kafka_conf,
        pipeline_topics["topic_predictions"],
        lambda r: len(r) >= len(expected_before),
        90,
        proc,
    )
    assert proc.stop() == 0

    send(kafka_conf, pipeline_topics["topic_readings"], during)
    expected = batch_run(points(before + during), artifact).predictions
    proc = processors("second", **settings)
    got = wait_for(
        kafka_conf,
        pipeline_topics["topic_predictions"],
        lambda r: len(r) >= len(expected),
        90,
        proc,
    )
    assert proc.stop() == 0
    assert window_keys(preds(got)) == window_keys(expected)
    dlq = consume_all(kafka_conf, pipeline_topics["topic_processor_dlq"], timeout=5)
    assert [r.headers.get(h.ERROR_REASON) for r in dlq] == []
