"""What egress cannot publish goes to its dead letters: a record whose topic MQTT cannot
carry is refused with a reason, and its offset waits for the dead letter's delivery."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bridge.egress.alertstate import StateEntry
from bridge.egress.messages import BAD_MQTT_TOPIC, MAX_TOPIC_BYTES
from bridge.egress.metrics import EgressMetrics
from bridge.egress.outbox import Outbox
from bridge.egress.settings import EgressSettings
from bridge.egress.tracker import CommitTracker
from iotml.core.errors import RecordError
from iotml.core.tags import MAX_TAG_LENGTH
from iotml.core.topics import TopicsSettings, topic_specs
from tests.unit.test_egress_messages import NOW, alert

P0 = ("alerts", 0)
TAGS = {"big": "\U0001f525" * MAX_TAG_LENGTH}


def test_a_record_waits_for_its_dead_letter_instead_of_a_refused_message():
    t = CommitTracker()
    t.start(P0, 0)
    t.add(P0, 0, [7])
    assert t.replace(7, -1)
    assert not t.ack(7)  # the refused message no longer counts
    assert t.committable() == {}
    assert t.ack(-1)  # Kafka confirmed the dead letter
    assert t.committable() == {P0: 1}
    assert not t.replace(7, -2)


def long_topic_outbox() -> tuple[Outbox, EgressMetrics]:
    # 70 levels of a 256-character tag of 4-byte characters: over MQTT's 65,535 bytes
    template = "iotml/{device}/" + "/".join(["{big}"] * 70) + "/{type}"
    metrics = EgressMetrics()
    return Outbox(EgressSettings(egress_alert_topic=template), metrics), metrics


def test_a_topic_mqtt_cannot_carry_is_refused_with_its_reason():
    outbox, _ = long_topic_outbox()
    tagged = replace(alert(), tags=TAGS)
    with pytest.raises(RecordError) as err:
        outbox.for_record("alerts", tagged.to_json(), NOW)
    assert err.value.reason == BAD_MQTT_TOPIC and str(MAX_TOPIC_BYTES) in str(err.value)
    assert len(outbox.book) == 0  # nothing counts as retained
    # the same record from the alert-state topic is skipped by the rebuild, not retained
    outbox2, metrics = long_topic_outbox()
    assert outbox2.for_state(StateEntry(tagged, tagged.to_json(), TAGS)) == []
    assert len(outbox2.book) == 0
    sample = metrics.registry.get_sample_value(
        "iotml_egress_rejected_total", {"topic": "alert-state", "reason": BAD_MQTT_TOPIC}
    )
    assert sample == 1


def test_the_egress_dead_letter_topic_is_in_the_topic_spec():
    specs = {s.name: s for s in topic_specs(TopicsSettings())}
    assert specs["egress-dlq"].partitions == 1
    assert EgressSettings().topic_egress_dlq == "egress-dlq"
