"""`iotml egress` through the real Kafka and Mosquitto, as a child process.

Alert events are produced straight into Kafka's ``alerts`` and ``alert-state`` topics, as
the processor writes them (no processor needed). The tests check the templated topics, the
retained state a late subscriber sees, the Home Assistant binary sensor turning on and off,
at-least-once delivery in order per device across ``kill -9``, a 30 s Mosquitto outage,
the dead-letter topic and the refusal of a second instance. The whole pipeline (simulator
to MQTT and back) is in ``test_egress_pipeline.py``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time

import pytest

from bridge.egress.presence import START_GRACE_S
from iotml.core import headers as h
from iotml.core.records import Prediction
from tests.egresstools import (
    ALERTS,
    Subscriber,
    assert_at_least_once_in_order,
    egress,
    egress_topics,
    episodes,
    event,
    log_on_failure,
    produce_alerts,
    render,
    retained,
    token,
    until,
    wait_retained,
)
from tests.kafkatools import consume_all, produce

__all__ = ["egress", "egress_topics"]  # fixtures, defined with their helpers

pytestmark = [pytest.mark.brokers, pytest.mark.slow]

OUTAGE_S = 30  # the Mosquitto outage


def test_alerts_reach_their_topics_retained_until_cleared_and_home_assistant_follows(
    egress, egress_topics, kafka_conf, mosquitto_broker
):
    now, port, dev = int(time.time() * 1000), mosquitto_broker.port, token()
    old = event(f"{dev}-old", "anomaly", "open", now - 60_000, now - 50_000)
    produce_alerts(kafka_conf, egress_topics, [old])  # before egress ever ran
    proc = egress(mosquitto_broker, ha_discovery="true")
    proc.wait_ready()
    live = Subscriber(port, ["iotml/#"])

    # an alert open before the first start is rebuilt from alert-state, retained
    want = {f"iotml/_/{dev}-old/alerts/anomaly": old.to_dict()}
    wait_retained(port, f"iotml/_/{dev}-old/alerts/+", want)

    opened = event(dev, "out_of_range", "open", now, now + 1_000)
    produce_alerts(kafka_conf, egress_topics, [opened])
    late = Prediction(dev, "temperature", now, now + 1, 1, now - 1, 1.0, 1.0, {}, "m", "v3")
    forecast = Prediction(
        dev, "temperature", now, now + 10_000, 60_000, now + 70_000, 81.5, 80.0, {}, "m", "v3"
    )
    for p in (late, forecast):
        produce(kafka_conf, egress_topics["topic_predictions"], [(dev, p.to_json())])
    topic = f"iotml/_/{dev}/alerts/out_of_range"
    forecast_topic = f"iotml/_/{dev}/forecast/temperature"
    until(lambda: live.payloads(topic) and live.payloads(forecast_topic), "alert and forecast")
    (alert_msg,) = [m for m in live.messages if m.topic == topic]
    assert json.loads(alert_msg.payload) == opened.to_dict()
    assert alert_msg.properties.ContentType == "application/json"
    props = dict(alert_msg.properties.UserProperty)
    assert props == {"alert_id": opened.alert_id, "model_version": "v3"}
    (fc,) = [m for m in live.messages if m.topic == forecast_topic]  # the late one skipped
    assert json.loads(fc.payload)["forecast"] == 81.5
    assert 55 <= fc.properties.MessageExpiryInterval <= 71
    assert proc.metric("iotml_egress_forecasts_expired_total") == 1

    # a subscriber connecting after the alert opened receives it retained; HA reads it as on
    state = retained(port, topic)[topic]
    assert state["event"] == "open"
    configs = retained(port, "homeassistant/binary_sensor/iotml/+/config")
    config = configs[f"homeassistant/binary_sensor/iotml/{dev}_out_of_range/config"]
    assert config["state_topic"] == topic and config["device"]["identifiers"]
    assert render(config["value_template"], state) == config["payload_on"]

    cleared = event(dev, "out_of_range", "cleared", now, now + 5_000)
    produce_alerts(kafka_conf, egress_topics, [cleared])
    until(lambda: len(live.payloads(topic)) == 2, "the clear")
    live.close()
    after = retained(port, f"iotml/_/{dev}/alerts/+")
    assert after == {topic: cleared.to_dict()}  # no open alert for that device and type
    assert render(config["value_template"], after[topic]) == config["payload_off"]
    assert proc.stop() == 0
    assert "stopped cleanly" in proc.log.read_text()


def test_kill_9_mid_stream_loses_no_alert_event_and_keeps_each_device_in_order(
    egress, egress_topics, kafka_conf, mosquitto_broker
):
    sent = episodes(token(), devices=4, per_device=40, t0=int(time.time() * 1000) - 600_000)
    sub = Subscriber(mosquitto_broker.port, [ALERTS])
    first = egress(mosquitto_broker)
    first.wait_ready()

    def feed() -> None:
        for i in range(0, len(sent), 8):
            produce_alerts(kafka_conf, egress_topics, sent[i : i + 8])
            time.sleep(0.1)

    producer = threading.Thread(target=feed)
    producer.start()
    try:
        until(lambda: len(sub.messages) >= 40, "the first messages", 30)
        first.stop(signal.SIGKILL)
        killed_at = len(sub.messages)
        second = egress(mosquitto_broker)
        second.wait_ready()
    finally:
        producer.join()
    until(lambda: sub.has(sent), "every event", 60)
    time.sleep(1.0)  # the states the restart re-publishes
    sub.close()
    duplicates = assert_at_least_once_in_order(sent, sub.events())
    assert killed_at < len(sent), "the kill came after the stream"
    print(f"{len(sent)} events, killed after {killed_at}, {duplicates} duplicate(s)")
    assert second.stop() == 0


def test_a_mosquitto_outage_loses_nothing_and_the_retained_state_is_rebuilt(
    egress, egress_topics, kafka_conf, own_mosquitto
):
    sent = episodes(token(), devices=3, per_device=10, t0=int(time.time() * 1000) - 600_000)
    before, during = sent[:9], sent[9:]
    sub = Subscriber(own_mosquitto.port, [ALERTS], session=f"sub-{os.urandom(4).hex()}")
    proc = egress(own_mosquitto)
    proc.wait_ready()
    produce_alerts(kafka_conf, egress_topics, before)
    until(lambda: sub.has(before), "the events before the outage")

    own_mosquitto.stop()
    outage = time.monotonic()
    proc.wait_ready(False, timeout=10)
    for a in during:  # alerts keep coming while the broker is away, over most of the 30 s
        produce_alerts(kafka_conf, egress_topics, [a])
        assert proc.http("/readyz")[0] == 503
        time.sleep(25 / len(during))
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage)))
    assert proc.http("/readyz")[0] == 503
    own_mosquitto.start()
    proc.wait_ready(timeout=20)
    with log_on_failure(proc):
        until(lambda: sub.has(sent), "every event", 30)
    sub.close()
    assert_at_least_once_in_order(sent, sub.events())

    latest = {f"iotml/_/{a.device_id}/alerts/{a.type}": a.to_dict() for a in sent}
    assert retained(own_mosquitto.port, ALERTS) == latest
    # the broker comes back without its retained messages: egress restores them
    own_mosquitto.stop()
    (own_mosquitto.data_dir / "mosquitto.db").unlink()
    own_mosquitto.start()
    proc.wait_ready(timeout=20)
    with log_on_failure(proc):
        wait_retained(own_mosquitto.port, ALERTS, latest)
    # at the start and after the last reconnection (the one before may have been cut short)
    until(lambda: proc.metric("iotml_egress_state_rebuilds_total") >= 2, "the rebuild")
    assert proc.stop() == 0


def test_mqtt_3_1_1_mode_publishes_retained_alerts(
    egress, egress_topics, kafka_conf, mosquitto_broker
):
    proc = egress(mosquitto_broker, mqtt_protocol="3.1.1")
    proc.wait_ready()
    now = int(time.time() * 1000)
    a = event(token(), "anomaly", "open", now, now)
    produce_alerts(kafka_conf, egress_topics, [a])
    topic = f"iotml/_/{a.device_id}/alerts/anomaly"
    wait_retained(mosquitto_broker.port, topic, {topic: a.to_dict()})
    log = (mosquitto_broker.data_dir / "mosquitto.log").read_text(errors="replace")
    assert re.search(rf"as {re.escape(proc.env['IOTML_MQTT_CLIENT_ID'])} \(p2", log)
    assert proc.stop() == 0


def test_records_egress_cannot_publish_go_to_its_dead_letter_topic_with_the_reason(
    egress, egress_topics, kafka_conf, mosquitto_broker
):
    # a template that makes a topic longer than MQTT allows for a record with a long tag
    template = "iotml/{device}/" + "/".join(["{big}"] * 70) + "/alerts/{type}"
    proc = egress(mosquitto_broker, egress_alert_topic=template)
    proc.wait_ready()
    now, dev = int(time.time() * 1000), token()
    big = {"big": "\U0001f525" * 256}  # 1 KiB of UTF-8 per level
    too_long = {**event(dev, "anomaly", "open", now, now).to_dict(), "tags": big}
    unknown = {**event(dev, "anomaly", "open", now, now).to_dict(), "type": "melted"}
    bad = [b"not json", json.dumps(unknown).encode(), json.dumps(too_long).encode()]
    produce(kafka_conf, egress_topics["topic_alerts"], [(dev, raw) for raw in bad])
    good = event(dev, "out_of_range", "open", now, now)
    produce(kafka_conf, egress_topics["topic_alerts"], [(dev, good.to_json())])
    topic = template.format(device=dev, big="_", type="out_of_range")
    wait_retained(mosquitto_broker.port, topic, {topic: good.to_dict()})

    dead = consume_all(kafka_conf, egress_topics["topic_egress_dlq"], 3, timeout=30)
    assert [r.value for r in dead] == bad and {r.key for r in dead} == {dev.encode()}
    reasons = [r.headers[h.ERROR_REASON] for r in dead]
    assert reasons == ["invalid_json", "wrong_type", "bad_mqtt_topic"]
    for r in dead:
        assert r.headers[h.SOURCE_TOPIC] == egress_topics["topic_alerts"]
        assert r.headers[h.ERROR_DETAIL]
    metrics = proc.http("/metrics")[1]
    for reason in reasons:
        assert f'iotml_egress_dead_letters_total{{reason="{reason}"}} 1.0' in metrics
    assert proc.stop() == 0
    assert "stopped cleanly" in proc.log.read_text()


def test_a_second_egress_of_the_same_group_is_refused_and_the_first_one_warns(
    egress, egress_topics, kafka_conf, mosquitto_broker, unique
):
    first = egress(mosquitto_broker)
    first.wait_ready()
    second = egress(mosquitto_broker, mqtt_client_id=unique("second"))
    with log_on_failure(first):
        until(lambda: first.metric("iotml_egress_other_instance") == 1, "the warning", 30)
    assert second.proc.wait(START_GRACE_S + 30) != 0
    assert "refusing to start" in second.log.read_text()
    assert second.http("/readyz")[0] == 0  # it never served a record: it is gone
    with log_on_failure(first):
        until(lambda: first.metric("iotml_egress_other_instance") == 0, "alone again", 30)
    assert "another iotml egress joined" in first.log.read_text()
    first.wait_ready()
    assert first.stop() == 0
