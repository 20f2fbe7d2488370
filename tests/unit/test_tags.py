"""Predictions, alerts and evaluations carry the tags of their device's latest reading
(``{site}`` of the egress topics), bounded, and the device state keeps them in its cold
part, rewritten only when they change."""

from __future__ import annotations

import json

import jsonschema
import pytest

from iotml.core.errors import RecordError
from iotml.core.evaluations import Evaluation
from iotml.core.records import Alert, Prediction
from iotml.core.schemas import schema
from iotml.core.tags import MAX_TAG_LENGTH, MAX_TAGS, carried_tags
from models import DeviceState
from processor.core import ALERTS, EVALUATIONS, PREDICTIONS
from tests.unit.test_processor_core import T0, DictState, Harness

SITE = {"site": "plant-a", "line": "3"}


def test_outputs_with_tags_match_their_schemas_and_round_trip():
    p = Prediction("d1", "temp", 0, 10, 20, 30, 1.0, 2.0, {"mean": 1.0}, "m", "v1", SITE)
    a = Alert("id", "d1", "anomaly", "open", 10, 5, 1.0, 2.0, "v1", "x", SITE)
    e = Evaluation("d1", "temp", 30, 20, 1.0, 2.0, 1.5, "m", "v1", SITE)
    for record, name in ((p, "prediction"), (a, "alert"), (e, "evaluation")):
        jsonschema.validate(record.to_dict(), schema(name))
        assert type(record).from_json(record.to_json()) == record  # type: ignore[attr-defined]


def test_records_written_before_tags_were_carried_still_parse():
    a = Alert("id", "d1", "anomaly", "open", 10, 5)
    old = {k: v for k, v in a.to_dict().items() if k != "tags"}
    assert Alert.from_dict(old).tags == {}


@pytest.mark.parametrize(
    "tags, reason",
    [
        ({"site": 1}, "wrong_type"),
        ([["site", "a"]], "wrong_type"),
        ({f"t{i}": "x" for i in range(MAX_TAGS + 1)}, "oversize"),
        ({"site": "x" * (MAX_TAG_LENGTH + 1)}, "oversize"),
        ({"": "x"}, "oversize"),
    ],
)
def test_an_output_record_with_bad_or_unbounded_tags_is_refused(tags, reason):
    obj = {**Alert("id", "d1", "anomaly", "open", 10, 5).to_dict(), "tags": tags}
    with pytest.raises(RecordError) as err:
        Alert.from_dict(obj)
    assert err.value.reason == reason
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, schema("alert"))


def test_carried_tags_keep_what_fits_and_the_first_by_name():
    assert carried_tags(SITE) == SITE
    many = {f"t{i:02d}": "x" for i in range(40)}
    long = {"a-long": "x" * (MAX_TAG_LENGTH + 1), "y" * (MAX_TAG_LENGTH + 1): "v", "": "v"}
    kept = carried_tags({**many, **long, "site": "b"})
    assert list(kept) == ["site", *(f"t{i:02d}" for i in range(MAX_TAGS - 1))]
    assert carried_tags({**long, "site": "b"}) == {"site": "b"}


def reading(dev: str, ts: int, temp: float, tags: dict[str, str]) -> bytes:
    return json.dumps(
        {"v": 1, "device_id": dev, "ts": ts, "metrics": {"temp": temp}, "tags": tags}
    ).encode()


def test_predictions_alerts_and_evaluations_carry_the_latest_tags_of_their_device():
    hz = Harness()
    outs = []
    for s in range(60):
        tags = SITE if s < 40 else {"site": "plant-b"}
        outs += hz.send(reading("d1", T0 + s * 1000, 150.0 if s >= 25 else 20.0, tags), T0)
    by_topic: dict[str, list[dict[str, str]]] = {}
    for o in outs:
        by_topic.setdefault(o.topic, []).append(json.loads(o.value)["tags"])
    assert by_topic[PREDICTIONS][0] == SITE and by_topic[PREDICTIONS][-1] == {"site": "plant-b"}
    assert by_topic[EVALUATIONS] and by_topic[EVALUATIONS][-1] == {"site": "plant-b"}
    assert by_topic[ALERTS] == [SITE]  # overheat_predicted opened while at plant-a


def test_tags_live_in_the_cold_state_and_are_rewritten_only_when_they_change():
    hz = Harness()
    writes: list[str] = []
    store = hz.states.setdefault(0, DictState())
    original = store.set
    store.set = lambda k, v: (writes.append(k), original(k, v))[1]  # type: ignore[method-assign]

    def cold_writes(s: int, tags: dict[str, str]) -> int:
        writes.clear()
        hz.send(reading("d1", T0 + s * 1000 + 1, 20.0, tags), T0)  # within one window
        return sum(1 for k in writes if "/c/" in k)

    assert cold_writes(0, SITE) == 1  # a new device
    assert cold_writes(1, dict(SITE)) == 0  # the same tags again: only the hot part
    assert cold_writes(2, {"site": "plant-b"}) == 1
    (cold_key,) = [k for k in store.data if "/c/" in k]
    assert json.loads(store.data[cold_key])["tags"] == {"site": "plant-b"}


def test_a_device_state_stored_before_tags_were_kept_loads_without_tags():
    st = DeviceState.from_dict({"device_id": "d1", "history": [], "last_seen": 5})
    assert st.tags == {} and st.last_seen == 5
