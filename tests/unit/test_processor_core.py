"""The processor engine without Kafka: records in, outputs out, state in a dict."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from iotml.core import headers as h
from iotml.core.eventtime import EventTimeRange
from iotml.core.records import Alert, Prediction
from models import AlertParams, FeatureSpec
from processor.core import ALERTS, DLQ, PREDICTIONS, Engine, Output
from processor.metrics import Metrics
from processor.model import ActiveModel

T0 = 1_700_000_000_000  # a multiple of 10 s
SPEC = FeatureSpec(metric="temp", window_ms=10_000, k=1, horizon_ms=20_000, min_count=1)


class PlusOne:
    """Forecast = the window's last value + 1; remembers batch sizes."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(len(X))
        return X[:, SPEC.names().index("last")].astype(np.float64) + 1.0


class DictState:
    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        return json.loads(self.data[key]) if key in self.data else default

    def set(self, key: Any, value: Any) -> None:
        self.data[key] = json.dumps(value)

    def delete(self, key: Any) -> None:
        self.data.pop(key, None)


def model(version: str = "v0001", params: AlertParams | None = None) -> ActiveModel:
    params = params or AlertParams(overheat_threshold=100.0, silence_ms=30_000)
    return ActiveModel("m", version, SPEC, params, PlusOne())


class Harness:
    def __init__(self, m: ActiveModel | None = None, **kw: Any) -> None:
        self.model = m or model()
        self.metrics = Metrics()
        self.engine = Engine(lambda: self.model, self.metrics, now=lambda: T0, **kw)
        self.states: dict[int, DictState] = {}
        self.offsets: dict[int, int] = {}

    def send(self, value: bytes | None, ts: int, partition: int = 0, headers: Any = None):
        state = self.states.setdefault(partition, DictState())
        offset = self.offsets.get(partition, -1) + 1
        self.offsets[partition] = offset
        return self.engine.process(value, headers, ts, "readings", partition, offset, state)

    def reading(self, dev: str, ts: int, temp: float = 20.0, partition: int = 0) -> list[Output]:
        body = {"v": 1, "device_id": dev, "ts": ts, "metrics": {"temp": temp}, "tags": {}}
        return self.send(json.dumps(body).encode(), ts, partition)

    def heartbeat(self, ts: int, partition: int = 0) -> list[Output]:
        return self.send(None, ts, partition, [(h.HEARTBEAT, b"advance")])

    def sample(self, name: str, **labels: str) -> float | None:
        """A sample of the engine's metrics, as /metrics exposes it."""
        return self.metrics.registry.get_sample_value(name, labels)


def predictions(outs: list[Output]) -> list[Prediction]:
    return [Prediction.from_json(o.value) for o in outs if o.topic == PREDICTIONS]


def alerts(outs: list[Output]) -> list[Alert]:
    return [Alert.from_json(o.value) for o in outs if o.topic == ALERTS]


def test_a_window_closes_when_the_device_sends_past_its_end_and_gives_one_prediction():
    hz = Harness()
    out: list[Output] = []
    for i in range(25):  # 2.5 windows, one reading per second
        out += hz.reading("d1", T0 + i * 1000, 20.0 + i)
    preds = predictions(out)
    assert [(p.window_start, p.window_end) for p in preds] == [(T0 + 10_000, T0 + 20_000)]
    p = preds[0]
    assert p.forecast == pytest.approx(20.0 + 19 + 1)
    assert p.model_version == "v0001" and p.horizon_ms == 20_000
    assert p.target_ts == p.window_end + 20_000
    assert set(p.features) == set(SPEC.names())


def test_invalid_records_are_dead_lettered_with_reason_and_source_headers():
    hz = Harness()
    out = hz.send(b"{not json", T0)
    assert len(out) == 1 and out[0].topic == DLQ
    hdrs = dict(out[0].headers)
    assert hdrs[h.ERROR_REASON] == b"invalid_json"
    assert hdrs[h.SOURCE_TOPIC] == b"readings" and hdrs[h.SOURCE_OFFSET] == b"0"
    assert out[0].value == b"{not json"


def test_readings_outside_the_event_time_range_are_dead_lettered():
    hz = Harness(event_range=EventTimeRange(max_age_ms=60_000, max_future_ms=1000))
    out = hz.reading("d1", T0 - 3_600_000)
    assert [dict(o.headers)[h.ERROR_REASON] for o in out] == [b"ts_too_old"]


def test_readings_without_the_model_metric_are_counted_not_dead_lettered():
    hz = Harness()
    body = {"v": 1, "device_id": "d1", "ts": T0, "metrics": {"humidity": 3.0}}
    assert hz.send(json.dumps(body).encode(), T0) == []
    assert hz.sample("iotml_processor_readings_without_metric_total") == 1


def test_a_reading_for_a_closed_window_is_dead_lettered_as_late():
    hz = Harness(grace_ms=2000)
    for i in range(13):
        hz.reading("d1", T0 + i * 1000)
    out = hz.reading("d1", T0 + 9_500)  # window [T0, T0+10s) closed at T0+12s
    assert [dict(o.headers)[h.ERROR_REASON] for o in out] == [b"late"]
    assert hz.sample("iotml_processor_dlq_total", reason="late") == 1


def test_a_reading_within_grace_is_used():
    hz = Harness(grace_ms=2000)
    for i in range(11):
        hz.reading("d1", T0 + i * 1000)
    assert hz.reading("d1", T0 + 9_500) == []  # window still open until T0+12s


def test_quiet_device_closes_by_the_partition_clock_and_goes_silent_then_clears():
    hz = Harness()
    out: list[Output] = []
    for i in range(25):
        out += hz.reading("quiet", T0 + i * 1000)
        out += hz.reading("busy", T0 + i * 1000)
    for i in range(25, 70):
        out += hz.reading("busy", T0 + i * 1000)
    quiet = [p for p in predictions(out) if p.device_id == "quiet"]
    assert [p.window_start for p in quiet] == [T0 + 10_000, T0 + 20_000]
    silent = [a for a in alerts(out) if a.type == "device_silent"]
    assert [(a.device_id, a.event, a.episode_start) for a in silent] == [
        ("quiet", "open", T0 + 24_000 + 30_000)
    ]
    back = hz.reading("quiet", T0 + 70_000)
    cleared = [a for a in alerts(back) if a.type == "device_silent"]
    assert [(a.event, a.alert_id) for a in cleared] == [("cleared", silent[0].alert_id)]


def test_a_heartbeat_closes_the_windows_of_an_idle_partition_in_one_model_call():
    hz = Harness()
    for i in range(15):
        for dev in ("a", "b", "c"):
            hz.reading(dev, T0 + i * 1000)
    forecaster = hz.model.forecaster
    assert isinstance(forecaster, PlusOne)
    forecaster.calls.clear()
    out = hz.heartbeat(T0 + 40_000)
    assert sorted(p.device_id for p in predictions(out)) == ["a", "b", "c"]
    assert forecaster.calls == [3]


def test_every_model_call_is_timed_and_its_rows_counted():
    hz = Harness()
    for i in range(15):
        for dev in ("a", "b", "c"):
            hz.reading(dev, T0 + i * 1000)
    hz.heartbeat(T0 + 40_000)
    forecaster = hz.model.forecaster
    assert isinstance(forecaster, PlusOne)
    calls = forecaster.calls
    assert calls[-1] == 3
    assert hz.sample("iotml_processor_inference_seconds_count") == len(calls)
    assert hz.sample("iotml_processor_inference_batch_rows_count") == len(calls)
    assert hz.sample("iotml_processor_inference_batch_rows_sum") == sum(calls)
    assert hz.sample("iotml_processor_predictions_total") == sum(calls)


def test_state_survives_a_new_engine_on_the_same_store():
    hz = Harness()
    for i in range(15):
        hz.reading("d1", T0 + i * 1000)
    again = Harness(hz.model)
    again.states, again.offsets = hz.states, hz.offsets
    out = []
    for i in range(15, 21):
        out += again.reading("d1", T0 + i * 1000)
    assert [p.window_start for p in predictions(out)] == [T0 + 10_000]


def test_overheat_alert_has_a_deterministic_id_and_clears():
    hz = Harness(model(params=AlertParams(overheat_threshold=50.0)))
    out: list[Output] = []
    temps = [20.0] * 20 + [60.0] * 20 + [20.0] * 30
    for i, t in enumerate(temps):
        out += hz.reading("d1", T0 + i * 1000, t)
    events = [(a.type, a.event, a.alert_id) for a in alerts(out)]
    kinds = [(t, e) for t, e, _ in events if t == "overheat_predicted"]
    assert kinds == [("overheat_predicted", "open"), ("overheat_predicted", "cleared")]
    ids = {i for t, _, i in events if t == "overheat_predicted"}
    assert len(ids) == 1


def test_model_stage_off_closes_windows_without_predictions():
    hz = Harness(model_stage=False)
    out: list[Output] = []
    for i in range(25):
        out += hz.reading("d1", T0 + i * 1000)
    assert predictions(out) == []
    assert hz.sample("iotml_processor_windows_closed_total", by="reading") == 2
