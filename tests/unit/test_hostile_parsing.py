"""Hostile input is refused with its own reason, and nothing but RecordError is ever raised.

Every entry of :mod:`tests.hostile` goes through the bridge (route lookup, then
``parse_payload``, as the translate step does) and through the processor's parsing
(``Reading.from_json``, then the event-time range), with orjson (the processor image) and
with the standard library parser alone (the bridge image).
"""

from __future__ import annotations

import random

import jsonschema
import pytest

from bridge.payloads import REASONS as BRIDGE_REASONS
from bridge.payloads import parse_payload
from bridge.routes import RouteTable
from iotml.core import strictjson
from iotml.core.errors import RecordError
from iotml.core.eventtime import EventTimeRange
from iotml.core.identifiers import check_device_id
from iotml.core.records import REASONS as RECORD_REASONS
from iotml.core.records import Reading
from iotml.core.schemas import schema
from tests import hostile, valid_inputs

PROCESSOR_REASONS = (*RECORD_REASONS, "ts_too_old", "ts_in_future")
RANGE = EventTimeRange()
AT_BRIDGE = [e for e in hostile.CORPUS if e.bridge is not None]
AT_PROCESSOR = [e for e in hostile.CORPUS if e.processor is not None]


@pytest.fixture(params=["orjson", "stdlib"])
def parser(request, monkeypatch):
    """Each JSON parser in turn: orjson where installed, then the standard library alone."""
    if request.param == "stdlib":
        monkeypatch.setattr(strictjson, "_fast_loads", None)
    elif strictjson._fast_loads is None:
        pytest.skip("orjson is not installed")
    return request.param


def at_bridge(topic: str | None, payload: bytes) -> RecordError | None:
    """What the bridge makes of ``payload`` on ``topic``: the error, or None for a reading."""
    table = RouteTable.parse(hostile.ROUTES, "readings")
    try:
        target = table.lookup((topic or hostile.DEFAULT_TOPIC).encode())
        assert target is not None, f"no route for {topic!r}"
        parse_payload(payload, target, hostile.NOW, RANGE, hostile.MAX_PAYLOAD_BYTES)
    except RecordError as exc:
        return exc
    return None


def at_processor(value: bytes) -> str | None:
    """The processor's verdict on a readings record: its reason, or None for a reading."""
    try:
        reading = Reading.from_json(value)
    except RecordError as exc:
        return exc.reason
    return RANGE.check(reading.ts, hostile.NOW)


def test_corpus_has_at_least_fifty_uniquely_named_entries():
    names = [e.name for e in hostile.CORPUS]
    assert len(names) >= 50
    assert len(set(names)) == len(names)


def test_every_expected_reason_is_a_declared_reason():
    assert {e.bridge for e in AT_BRIDGE} <= set(BRIDGE_REASONS)
    assert {e.processor for e in AT_PROCESSOR} <= set(PROCESSOR_REASONS)


@pytest.mark.parametrize("entry", AT_BRIDGE, ids=lambda e: e.name)
def test_bridge_refuses_hostile_payload_with_its_reason(entry, parser):
    err = at_bridge(entry.topic, entry.payload)
    assert err is not None, "accepted"
    assert err.reason == entry.bridge, err.detail
    err.detail.encode()  # goes into a Kafka header: must be valid UTF-8


@pytest.mark.parametrize("entry", AT_PROCESSOR, ids=lambda e: e.name)
def test_processor_refuses_hostile_record_with_its_reason(entry, parser):
    assert at_processor(entry.payload) == entry.processor


def test_valid_payloads_are_accepted_by_the_bridge(parser):
    payloads = valid_inputs.valid_payloads()
    assert len({p for _, p in payloads}) >= 10
    for topic, payload in payloads:
        assert at_bridge(topic, payload) is None, payload[:80]


def test_valid_records_are_accepted_by_the_processor(parser):
    for value in valid_inputs.valid_records():
        assert at_processor(value) is None, value[:80]


def test_hostile_and_valid_input_mixed_keep_their_own_verdicts(parser):
    stream = [(e.topic, e.payload, e.bridge) for e in AT_BRIDGE]
    stream += [(t, p, None) for t, p in valid_inputs.valid_payloads()]
    random.Random(7).shuffle(stream)
    verdicts = [at_bridge(t, p) for t, p, _ in stream]
    assert [v.reason if v else None for v in verdicts] == [r for _, _, r in stream]


def test_mutated_payloads_raise_nothing_but_record_errors(parser):
    rng = random.Random(11)
    seeds = [p for _, p in valid_inputs.valid_payloads()] + valid_inputs.valid_records()
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            op = rng.randrange(3)
            if op == 0:
                data[i] = rng.randrange(256)
            elif op == 1:
                data.insert(i, rng.choice(b'[]{}":,\\u0d8e+-9.'))
            else:
                del data[i:]
                if not data:
                    break
        payload = bytes(data)
        for topic in (hostile.DEFAULT_TOPIC, hostile.GATEWAY_TOPIC):
            at_bridge(topic, payload)
        at_processor(payload)


# -- the device-id contract ----------------------------------------------------------------

VALID_IDS = [
    "dev-1",
    "d",
    "a" * 128,
    "é" * 64,  # 128 bytes
    "😀" * 32,  # 128 bytes
    "aa:bb:cc:dd:ee:ff",
    "plant a.line 3",
    "[x]{y}",
    "nbsp\u00a0ok",
]

INVALID_IDS = [
    ("", "is empty"),
    ("a" * 129, "is 129 UTF-8 bytes, more than 128"),
    ("é" * 65, "is 130 UTF-8 bytes"),
    ("😀" * 33, "is 132 UTF-8 bytes"),
    ("a+b", "'+' (an MQTT wildcard) at index 1"),
    ("a#", "'#' (an MQTT wildcard) at index 1"),
    ("plant/dev", "'/' (the MQTT topic level separator) at index 5"),
    ("dev\x00", "control character U+0000 at index 3"),
    ("\x1b[31m", "control character U+001B at index 0"),
    ("dev\t1", "control character U+0009"),
    ("dev\x7f", "control character U+007F"),
    ("dev\x80", "control character U+0080"),
    ("dev\x9f", "control character U+009F"),
    ("\ud800", "lone surrogate U+D800 at index 0"),
    ("dev\udfff", "lone surrogate U+DFFF at index 3"),
]


@pytest.mark.parametrize("device_id", VALID_IDS)
def test_valid_device_ids_pass_the_contract_unchanged(device_id):
    assert check_device_id(device_id) == device_id
    assert Reading(device_id, 1, {"t": 1.0}).device_id == device_id


@pytest.mark.parametrize(("device_id", "rule"), INVALID_IDS)
def test_invalid_device_ids_are_bad_device_id_naming_the_rule(device_id, rule):
    with pytest.raises(RecordError) as err:
        check_device_id(device_id)
    assert err.value.reason == "bad_device_id"
    assert rule in err.value.detail
    err.value.detail.encode()


@pytest.mark.parametrize(("device_id", "rule"), INVALID_IDS)
def test_a_reading_cannot_be_built_with_an_invalid_device_id(device_id, rule):
    with pytest.raises(RecordError, match="bad_device_id"):
        Reading(device_id, 1, {"t": 1.0})


@pytest.mark.parametrize("value", [None, 5, b"dev-1", ["dev-1"]])
def test_a_device_id_that_is_not_a_string_is_wrong_type(value):
    with pytest.raises(RecordError) as err:
        check_device_id(value)
    assert err.value.reason == "wrong_type"


def test_the_detail_names_where_the_device_id_came_from():
    with pytest.raises(RecordError, match="topic segment"):
        check_device_id("a+b", "topic segment {device}")


@pytest.mark.parametrize("name", ["reading", "prediction", "alert"])
def test_every_schema_with_a_device_id_uses_the_same_definition(name):
    assert schema(name)["properties"]["device_id"] == schema("reading")["properties"]["device_id"]


@pytest.mark.parametrize(
    "device_id", VALID_IDS + [i for i, _ in INVALID_IDS if i.isascii() or len(i) <= 32]
)
def test_json_schema_agrees_with_the_device_id_contract(device_id):
    try:
        check_device_id(device_id)
        valid = True
    except RecordError:
        valid = False
    validator = jsonschema.Draft202012Validator(schema("reading")["properties"]["device_id"])
    assert validator.is_valid(device_id) is valid


def test_json_schema_bounds_characters_where_the_contract_bounds_bytes():
    # JSON Schema counts characters, not bytes: it lets through what the code refuses.
    validator = jsonschema.Draft202012Validator(schema("reading")["properties"]["device_id"])
    assert validator.is_valid("é" * 65)
    with pytest.raises(RecordError):
        check_device_id("é" * 65)
