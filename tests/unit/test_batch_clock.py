"""``iotml batch`` replays the processor's partition clock: the same records give the same
predictions and alerts, device_silent and time-to-live clears included."""

from __future__ import annotations

import json
from pathlib import Path

from iotml.core import headers as h
from iotml.core.records import Alert, Prediction
from models import AlertParams
from models.clock import rules_for
from models.registry import Artifact
from models.replay import Record, run_clocked
from processor.core import ALERTS, PREDICTIONS
from processor.model import ActiveModel
from tests.unit.test_processor_core import SPEC, T0, Harness, PlusOne, model

PARAMS = AlertParams(overheat_threshold=30.0, silence_ms=30_000)


def fleet() -> list[Record]:
    """Two partitions; on partition 0 a device goes quiet for a minute and comes back, one
    leaves for good (past the time-to-live), one overheats and moves to another site;
    arrival times on partition 1."""
    records: list[Record] = []
    a, b = {"site": "a"}, {"site": "b", "line": "3"}
    for s in range(400):
        ts = T0 + s * 1000
        if s < 60 or s > 120:
            records.append((0, None, ("comes-back", ts, 20.0, a)))
        if s < 40:
            records.append((0, None, ("leaves", ts, 20.0, a)))
        records.append(
            (0, None, ("hot", ts, 35.0 if 100 <= s < 150 else 20.0, a if s < 130 else b))
        )
        records.append((1, ts + 250, ("other", ts - 120_000, 20.0, {})))  # a clock 2 min slow
        if s % 7 == 0:
            records.append((1, ts + 250, ("other", ts - 120_000, None, {})))  # no metric
    return records


def stream(
    records: list[Record], active: ActiveModel | None = None, ttl_ms: int = 180_000
) -> tuple[list[Prediction], list[Alert]]:
    """What the processor's engine publishes for ``records`` (each sent to its partition),
    with ``active`` (default: the test model) and the device time-to-live ``ttl_ms``."""
    active = active or model(params=PARAMS)
    hz = Harness(active, ttl_ms=ttl_ms)
    preds: list[Prediction] = []
    alerts: list[Alert] = []
    for partition, arrived, (dev, ts, value, tags) in records:
        metrics = {active.spec.metric: value} if value is not None else {"load": 1.0}
        body = {"v": 1, "device_id": dev, "ts": ts, "metrics": metrics, "tags": tags}
        headers = [(h.RECEIVED_AT, str(arrived).encode())] if arrived is not None else None
        for o in hz.send(json.dumps(body).encode(), ts, partition, headers):
            if o.topic == PREDICTIONS:
                preds.append(Prediction.from_json(o.value))
            elif o.topic == ALERTS:
                alerts.append(Alert.from_json(o.value))
    return preds, alerts


def test_batch_gives_the_streams_predictions_and_alerts_with_its_clock():
    records = fleet()
    preds, alerts = stream(records)
    artifact = Artifact("m", "v0001", Path("."), {}, SPEC, PARAMS, PlusOne())  # type: ignore[arg-type]
    rules = rules_for(SPEC, 0, None, PARAMS.silence_ms, 180_000)
    view = run_clocked(records, artifact, 0, rules)

    def key(p: Prediction) -> tuple[str, int, float, str]:
        return p.device_id, p.window_end, round(p.forecast, 6), json.dumps(p.tags)

    assert sorted(map(key, view.predictions)) == sorted(map(key, preds))
    events = [(a.device_id, a.type, a.event, a.alert_id, dict(a.tags)) for a in alerts]
    assert [(a.device_id, a.type, a.event, a.alert_id, a.tags) for a in view.alerts] == events
    kinds = {(d, t, e) for d, t, e, _, _ in events}
    # each output carries its device's tags as they were at its reading
    assert {json.dumps(p.tags) for p in preds if p.device_id == "hot"} == {
        json.dumps({"site": "a"}),
        json.dumps({"site": "b", "line": "3"}),
    }
    hot = [dict(a.tags) for a in alerts if a.device_id == "hot"]
    assert hot == [{"site": "a"}, {"site": "b", "line": "3"}]  # opened at a, cleared at b
    # the replay covers what only the clock produces
    assert ("comes-back", "device_silent", "open") in kinds
    assert ("leaves", "device_silent", "cleared") in kinds  # forgotten past its TTL
    assert ("hot", "overheat_predicted", "open") in kinds


def test_batch_predictions_carry_the_anomaly_likelihood_as_the_stream_does():
    import dataclasses

    from models.batch import predictions_table
    from tests.dashboardtools import prediction

    judged = dataclasses.replace(prediction(1, 1_700_000_010_000), anomaly_likelihood=0.97)
    rows = predictions_table([judged, prediction(2, 1_700_000_010_000)]).to_pylist()
    assert [r["anomaly_likelihood"] for r in rows] == [0.97, None]
