"""The ack/commit tracker: an offset is committed only when the MQTT broker acknowledged
every message of its record and of every record before it in the partition."""

from __future__ import annotations

from bridge.egress.tracker import CommitTracker

P0, P1 = ("alerts", 0), ("alerts", 1)


def tracker(*parts: tuple[str, int], at: int = 0) -> CommitTracker:
    t = CommitTracker()
    for tp in parts or (P0,):
        t.start(tp, at)
    return t


def test_nothing_is_committable_before_the_broker_acknowledges():
    t = tracker()
    t.add(P0, 0, [1])
    assert t.committable() == {}
    assert t.in_flight == 1


def test_an_acknowledged_record_makes_the_next_offset_committable():
    t = tracker()
    t.add(P0, 0, [1])
    t.ack(1)
    assert t.committable() == {P0: 1}


def test_a_later_ack_waits_for_every_earlier_record_of_its_partition():
    t = tracker()
    t.add(P0, 0, [1])
    t.add(P0, 1, [2])
    t.add(P0, 2, [3])
    t.ack(3)
    t.ack(2)
    assert t.committable() == {}
    t.ack(1)
    assert t.committable() == {P0: 3}


def test_a_record_with_several_messages_is_done_when_all_are_acknowledged():
    t = tracker()
    t.add(P0, 0, [1, 2, 3])  # discovery configs, then the alert
    t.ack(1)
    t.ack(3)
    assert t.committable() == {}
    t.ack(2)
    assert t.committable() == {P0: 1}


def test_a_skipped_record_is_done_at_once_but_still_waits_for_earlier_ones():
    t = tracker()
    t.add(P0, 0, [1])
    t.add(P0, 1, [])  # an expired forecast
    assert t.committable() == {}
    t.ack(1)
    assert t.committable() == {P0: 2}
    t.add(P0, 2, [])
    assert t.committable() == {P0: 3}


def test_partitions_do_not_wait_for_each_other():
    t = tracker(P0, P1)
    t.add(P0, 0, [1])
    t.add(P1, 10, [2])
    t.ack(2)
    assert t.committable() == {P1: 11}


def test_a_committed_offset_is_not_committed_again():
    t = tracker()
    t.add(P0, 0, [1])
    t.ack(1)
    t.committed({P0: 1})
    assert t.committable() == {}


def test_a_partition_starts_committed_where_reading_starts():
    t = tracker(at=42)
    assert t.committable() == {}
    t.add(P0, 42, [7])
    t.ack(7)
    assert t.committable() == {P0: 43}


def test_an_ack_of_an_untracked_message_changes_nothing():
    t = tracker()
    t.add(P0, 0, [1])
    assert t.ack(99) is False  # a re-published retained state belongs to no record
    assert t.committable() == {}


def test_the_end_of_a_partition_past_a_transaction_marker_is_committable_when_all_is_done():
    t = tracker()
    t.add(P0, 0, [1])
    t.skip_to(P0, 2)  # end of partition: offset 1 was a commit marker
    assert t.committable() == {}
    t.ack(1)
    t.skip_to(P0, 2)
    assert t.committable() == {P0: 2}


def test_forgotten_partitions_stop_counting():
    t = tracker(P0, P1)
    t.add(P0, 0, [1])
    t.add(P1, 0, [2])
    t.forget([P0])
    assert t.in_flight == 1
    assert t.ack(1) is False
