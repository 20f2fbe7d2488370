import struct

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bridge._mqtt import BulkClient, Message, puback_packets
from bridge.acks import AckBatch, AckQueue


def confirm(batch: AckBatch, n: int = 1) -> None:
    for _ in range(n):
        batch.delivered(None, None)


def test_acks_are_released_in_receive_order_even_when_kafka_confirms_out_of_order():
    queue = AckQueue()
    first = queue.open([1, 2], 2, generation=1)
    second = queue.open([3], 1, generation=1)
    first.remaining, second.remaining = 2, 1
    confirm(second)
    assert list(queue.ready()) == []  # the later batch waits for the earlier one
    confirm(first, 2)
    assert [b.mids for b in queue.ready()] == [[1, 2], [3]]
    assert queue.in_flight == 0


def test_in_flight_counts_messages_until_released():
    queue = AckQueue()
    batch = queue.open([1, 2, 3], 3, generation=1)
    batch.remaining = 3
    assert queue.in_flight == 3
    confirm(batch, 3)
    list(queue.ready())
    assert queue.in_flight == 0


def test_failed_delivery_is_reported_and_keeps_the_batch_open():
    queue = AckQueue()
    batch = queue.open([7], 1, generation=1)
    batch.remaining = 1
    batch.delivered("boom", "msg")
    assert queue.failures == [(batch, "boom", "msg")]
    assert list(queue.ready()) == []


def test_bulk_puback_bytes_equal_paho_packets():
    expected = b"".join(struct.pack("!BBH", 0x40, 2, mid) for mid in (1, 300, 65535))
    assert puback_packets([1, 300, 65535]) == expected


def publish_packet(
    topic: bytes, payload: bytes, qos: int, mid: int, v5: bool, props: bytes = b"\x00"
) -> bytes:
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    if v5:
        body += props
    body += payload
    length = len(body)
    encoded = b""
    while True:
        byte, length = length % 128, length // 128
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return bytes([0x30 | (qos << 1)]) + encoded + body


@pytest.mark.parametrize("v5", [True, False])
def test_fast_publish_decoder_reads_topic_payload_qos_and_mid(v5: bool):
    client = BulkClient(
        CallbackAPIVersion.VERSION2,
        client_id="t",
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        manual_ack=True,
    )
    got: list[Message] = []
    client.on_messages = got.append
    big = b"x" * 300  # a two-byte remaining length
    data = publish_packet(b"a/b", b"12.5", 1, 42, v5) + publish_packet(b"c", big, 0, 0, v5)
    client._rbuf, client._rpos = data + data[:5], 0  # plus the start of an incomplete packet
    assert client._drain_publishes(100) == 2
    assert got == [
        Message(b"a/b", b"12.5", 1, False, 42, None),
        Message(b"c", big, 0, False, 0, None),
    ]
    assert client.buffered()  # the incomplete packet waits for more bytes


def test_fast_publish_decoder_reads_user_properties():
    client = BulkClient(
        CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5, manual_ack=True
    )
    got: list[Message] = []
    client.on_messages = got.append
    prop = b"\x26" + struct.pack("!H", 2) + b"fw" + struct.pack("!H", 3) + b"2.1"
    client._rbuf = publish_packet(b"t", b"1", 1, 5, True, bytes([len(prop)]) + prop)
    client._drain_publishes(10)
    assert got[0].properties is not None
    assert got[0].properties.UserProperty == [("fw", "2.1")]
    assert got[0].payload == b"1"
