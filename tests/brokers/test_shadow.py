"""Shadow evaluation through the real Kafka: ``iotml processor`` runs the live version and
scores a candidate beside it on the same windows; only the live version is published."""

from __future__ import annotations

from collections import Counter

import pytest

from iotml.core import headers as h
from iotml.core.evaluations import LIVE, SHADOW, Evaluation
from models import Registry
from models.replay import run as batch_run
from tests.kafkatools import Record, consume_all
from tests.model_fixtures import train_tiny_artifact
from tests.processortools import now_ms, points, preds, send, synthetic, wait_for

pytestmark = [pytest.mark.brokers, pytest.mark.slow]


def test_the_processor_scores_a_shadow_version_and_publishes_only_the_live_one(
    kafka_conf, pipeline_topics, processors, unique, tiny_registry
):
    # v0001 is LATEST (the live one); v0002 is published beside it, not promoted
    shadow = train_tiny_artifact(tiny_registry, name="tiny", seed=7, epochs=5, promote=False)
    assert (shadow, Registry(tiny_registry).latest("tiny")) == ("v0002", "v0001")
    devices = [f"dev-{i}" for i in range(4)]
    start = (now_ms() - 600_000) // 10_000 * 10_000
    readings = synthetic(devices, start, 180)
    send(kafka_conf, pipeline_topics["topic_readings"], readings)
    proc = processors(
        model_registry=tiny_registry,
        model_name="tiny",
        consumer_group=unique("g"),
        shadow_version="v0002",
        **pipeline_topics,
    )
    # the batch path's forecasts of each version: what live and shadow must have scored
    forecasts = {}
    for version in ("v0001", "v0002"):
        artifact = Registry(tiny_registry).load("tiny", version)
        run = batch_run(points(readings), artifact, grace_ms=artifact.grace_ms, flush=False)
        forecasts[version] = {(p.device_id, p.target_ts): p.forecast for p in run.predictions}

    def both_scored(records: list[Record]) -> bool:
        roles = Counter(Evaluation.from_json(r.value or b"").role for r in records)
        return roles[LIVE] >= 40 and roles[SHADOW] >= 40

    records = wait_for(kafka_conf, pipeline_topics["topic_evaluations"], both_scored, 120, proc)
    predictions = consume_all(kafka_conf, pipeline_topics["topic_predictions"], timeout=10)
    assert proc.stop() == 0

    scored = [Evaluation.from_json(r.value or b"") for r in records]
    live = {(e.device_id, e.target_ts): e for e in scored if e.role == LIVE}
    shadowed = {(e.device_id, e.target_ts): e for e in scored if e.role == SHADOW}
    assert {e.model_version for e in live.values()} == {"v0001"}
    assert {e.model_version for e in shadowed.values()} == {"v0002"}
    # the same targets, actuals and persistence; each version's own forecasts
    common = live.keys() & shadowed.keys()
    assert len(common) >= 40
    for key in common:
        a, b = live[key], shadowed[key]
        assert (a.actual, a.persistence) == (b.actual, b.persistence)
        assert a.forecast == pytest.approx(forecasts["v0001"][key], abs=1e-5)
        assert b.forecast == pytest.approx(forecasts["v0002"][key], abs=1e-5)
    assert any(abs(live[k].forecast - shadowed[k].forecast) > 1e-6 for k in common)
    mae = {
        role: sum(e.abs_error for e in group.values()) / len(group)
        for role, group in ((LIVE, live), (SHADOW, shadowed))
    }
    print(f"live v0001 mae {mae[LIVE]:.4f}, shadow v0002 mae {mae[SHADOW]:.4f} ({len(common)})")

    # only the live version is published
    assert predictions and {p.model_version for p in preds(predictions)} == {"v0001"}
    assert {r.headers[h.MODEL_VERSION] for r in predictions} == {"v0001"}


def test_a_shadow_with_another_layout_is_refused_at_start(
    kafka_conf, pipeline_topics, processors, unique, tiny_registry
):
    train_tiny_artifact(tiny_registry, name="tiny", k=1, epochs=1, promote=False)
    proc = processors(
        model_registry=tiny_registry,
        model_name="tiny",
        consumer_group=unique("g"),
        shadow_version="v0002",
        **pipeline_topics,
    )
    assert proc.proc is not None
    assert proc.proc.wait(120) == 2
    text = proc.text()
    assert "iotml: IOTML_SHADOW_VERSION=v0002: tiny v0002 cannot shadow v0001: its k" in text
