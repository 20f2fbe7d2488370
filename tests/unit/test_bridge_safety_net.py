"""No message can stop the bridge: any failure on one message is an unprocessable dead
letter, and header values never raise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bridge._mqtt import Message
from bridge.routes import RouteTable
from bridge.translate import KafkaRecord, Translator
from iotml.core import headers as h
from iotml.core.eventtime import EventTimeRange
from tests.bridgefakes import BOOM, TOPIC, message, reading


def translate(*msgs: Message) -> list[KafkaRecord]:
    routes = RouteTable.parse(["sensors/{site}/{device}/{metric}"], "readings")
    return list(Translator(routes, "readings-dlq", EventTimeRange(), 65536).translate(msgs, 1))


@pytest.mark.usefixtures("failing_parser")
def test_a_message_whose_handling_raises_is_dead_lettered_as_unprocessable_and_the_rest_go_on():
    records = translate(message(reading(1)), message(BOOM), message(reading(2)))
    assert [r.reason for r in records] == [None, "unprocessable", None]
    dead = records[1]
    assert dead.topic == "readings-dlq"
    assert dead.value == BOOM
    headers = {k: v.decode() for k, v in dead.headers}  # strict UTF-8
    assert headers[h.ERROR_REASON] == "unprocessable"
    assert headers[h.ERROR_DETAIL] == "ZeroDivisionError: injected \\ud800 failure"
    assert headers[h.MQTT_TOPIC] == TOPIC.decode()


def test_header_values_that_utf8_cannot_hold_are_escaped_not_raised():
    props = SimpleNamespace(ContentType="text/\ud800", UserProperty=[("fw\udfff", "2.\ud800")])
    [record] = translate(message(reading(1), props=props))
    assert record.reason is None
    headers = {k: v.decode() for k, v in record.headers}
    assert headers[h.MQTT_CONTENT_TYPE] == "text/\\ud800"
    assert headers[h.MQTT_USER_PROPERTY_PREFIX + "fw\\udfff"] == "2.\\ud800"
