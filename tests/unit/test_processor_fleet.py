"""The engine with a messy fleet: skewed clocks, devices that leave, poison records."""

from __future__ import annotations

import json

from iotml.core import headers as h
from models import AlertParams
from processor.core import ALERT_STATE, DLQ
from tests.unit.test_processor_core import T0, Harness, alerts, model, predictions


def test_a_device_nine_minutes_fast_costs_its_neighbours_no_window():
    hz = Harness()
    fast, normal = "fast", [f"dev-{i}" for i in range(5)]
    dead, preds = [], []
    for s in range(180):
        for dev in [fast, *normal]:
            ts = T0 + s * 1000 + (540_000 if dev == fast else 0)
            out = hz.reading(dev, ts)
            dead += [o for o in out if o.topic == DLQ]
            preds += predictions(out)
    assert dead == []
    per_device = {dev: sum(p.device_id == dev for p in preds) for dev in normal}
    assert set(per_device.values()) == {16}  # 17 windows closed by readings, minus k=1


def test_a_device_uploading_hours_of_buffered_readings_does_not_age_the_others():
    hz = Harness()
    arrived = lambda ts: [(h.RECEIVED_AT, str(ts).encode())]  # noqa: E731
    dead = []
    for s in range(120):
        now = T0 + 3_600_000 + s * 1000
        for dev in ("a", "b"):
            body = {"v": 1, "device_id": dev, "ts": now, "metrics": {"temp": 20.0}}
            dead += [
                o
                for o in hz.send(json.dumps(body).encode(), now, 0, arrived(now))
                if o.topic == DLQ
            ]
        for k in range(30):  # "late" replays an hour of readings it buffered offline
            old = T0 + (s * 30 + k) * 1000
            body = {"v": 1, "device_id": "late", "ts": old, "metrics": {"temp": 20.0}}
            hz.send(json.dumps(body).encode(), old, 0, arrived(now))
    assert dead == []


def test_a_device_silent_past_its_time_to_live_is_forgotten_after_its_alerts_clear():
    params = AlertParams(overheat_threshold=100.0, silence_ms=30_000)
    hz = Harness(model(params=params), ttl_ms=120_000)
    for s in range(15):
        hz.reading("gone", T0 + s * 1000)
        hz.reading("stays", T0 + s * 1000)
    out = []
    for s in range(15, 200):
        out += hz.reading("stays", T0 + s * 1000)
    events = [(a.device_id, a.type, a.event) for a in alerts(out)]
    assert ("gone", "device_silent", "open") in events
    assert events.index(("gone", "device_silent", "cleared")) > events.index(
        ("gone", "device_silent", "open")
    )
    assert hz.sample("iotml_processor_devices_forgotten_total") == 1
    assert not any("gone" in str(k) for k in hz.states[0].data)


def test_every_alert_event_is_also_the_latest_state_of_its_device_and_type():
    params = AlertParams(overheat_threshold=100.0, silence_ms=30_000)
    hz = Harness(model(params=params))
    out = []
    for s in range(15):
        out += hz.reading("a", T0 + s * 1000)
        out += hz.reading("b", T0 + s * 1000)
    for s in range(15, 60):
        out += hz.reading("b", T0 + s * 1000)
    state = [o for o in out if o.topic == ALERT_STATE]
    assert [o.key for o in state] == ["a/device_silent"]
    assert [a.alert_id for a in alerts(out)] == [json.loads(o.value)["alert_id"] for o in state]


def test_a_record_whose_handling_fails_is_dead_lettered_and_the_rest_goes_on(monkeypatch):
    import models.partition as core

    hz = Harness()
    real = core.add_reading

    def explode(state, ts, value, spec, grace_ms=0):
        if state.device_id == "poison":
            raise OverflowError("int too large to convert to float")
        return real(state, ts, value, spec, grace_ms)

    monkeypatch.setattr(core, "add_reading", explode)
    out = hz.reading("poison", T0)
    assert [(o.topic, dict(o.headers)[h.ERROR_REASON]) for o in out] == [(DLQ, b"unprocessable")]
    assert b"OverflowError" in dict(out[0].headers)[h.ERROR_DETAIL]
    for s in range(15):
        hz.reading("fine", T0 + s * 1000)
    assert hz.sample("iotml_processor_dlq_total", reason="unprocessable") == 1
