"""MQTT messages -> Kafka records, without brokers (bridge.translate)."""

import json

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge._mqtt import Message
from bridge.routes import RouteTable
from bridge.translate import KafkaRecord, Translator
from iotml.core import headers as h
from iotml.core.eventtime import EventTimeRange

NOW = 1_750_000_000_000
TOPIC = b"sensors/s1/dev-1/temperature"


def translate(*msgs: Message, max_bytes: int = 65536) -> list[KafkaRecord]:
    routes = RouteTable.parse(["sensors/{site}/{device}/{metric}"], "readings")
    translator = Translator(routes, "readings-dlq", EventTimeRange(), max_bytes)
    return list(translator.translate(msgs, NOW))


def message(topic: bytes = TOPIC, payload: bytes = b"21.5", props=None) -> Message:
    return Message(topic, payload, 1, False, 7, props)


def test_routed_message_becomes_a_reading_keyed_by_device_at_its_event_time():
    [record] = translate(message(payload=b'{"ts": %d, "temperature": 21.5}' % (NOW - 1000)))
    assert record.topic == "readings"
    assert record.key == b"dev-1"
    assert record.timestamp == NOW - 1000
    assert record.reason is None
    value = json.loads(record.value)
    assert value["device_id"] == "dev-1" and value["metrics"] == {"temperature": 21.5}


def test_every_record_carries_the_mqtt_topic_qos_retain_and_receive_time():
    [record] = translate(message())
    assert h.decode(record.headers) == {
        h.MQTT_TOPIC: TOPIC.decode(),
        h.MQTT_QOS: "1",
        h.MQTT_RETAIN: "0",
        h.RECEIVED_AT: str(NOW),
    }


def test_mqtt5_content_type_and_user_properties_become_headers():
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.UserProperty = [("fw", "2.1.0")]
    [record] = translate(message(props=props))
    headers = h.decode(record.headers)
    assert headers[h.MQTT_CONTENT_TYPE] == "application/json"
    assert headers[h.MQTT_USER_PROPERTY_PREFIX + "fw"] == "2.1.0"


def test_unrouted_message_becomes_a_dead_letter_with_the_raw_payload():
    [record] = translate(message(topic=b"other/dev-1", payload=b"21.5"))
    assert record.topic == "readings-dlq"
    assert record.reason == "no_route"
    assert record.value == b"21.5"
    assert record.key is None
    assert record.timestamp == NOW
    headers = h.decode(record.headers)
    assert headers[h.ERROR_REASON] == "no_route"
    assert headers[h.MQTT_TOPIC] == "other/dev-1"
    assert headers[h.MQTT_QOS] == "1"


def test_bad_payload_dead_letter_keeps_the_route_key_and_one_topic_header():
    [record] = translate(message(payload=b"{not json"))
    assert record.reason == "invalid_json"
    assert record.key == b"dev-1"
    assert [k for k, _ in record.headers].count(h.MQTT_TOPIC) == 1


def test_topic_that_is_not_utf8_is_dead_lettered():
    [record] = translate(message(topic=b"sensors/\xff/dev-1/temperature"))
    assert record.reason == "invalid_topic"


def test_records_come_out_in_receive_order():
    records = translate(message(payload=b"1"), message(topic=b"x"), message(payload=b"3"))
    assert [r.reason for r in records] == [None, "no_route", None]
