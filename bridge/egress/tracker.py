"""Which Kafka offsets may be committed: the ack/commit tracker.

Every record read is registered with the MQTT message ids it was published as (none when
it was skipped: an expired forecast, a rejected record). A record is *done* when the
broker acknowledged all of its messages; per partition, the committable offset is the one
after the longest run of done records from the start, so a commit never covers a record
whose message the broker has not acknowledged, even when acknowledgements (or records of
other partitions) complete out of order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

__all__ = ["CommitTracker", "TopicPartitionKey"]

TopicPartitionKey = tuple[str, int]


class CommitTracker:
    """Single-threaded: call it from the loop that publishes and handles PUBACKs."""

    def __init__(self) -> None:
        self._records: dict[TopicPartitionKey, deque[list[int]]] = {}  # [offset, pending]
        self._by_mid: dict[int, tuple[TopicPartitionKey, list[int]]] = {}
        self._next: dict[TopicPartitionKey, int] = {}  # offset after the done prefix
        self._committed: dict[TopicPartitionKey, int] = {}

    @property
    def in_flight(self) -> int:
        """Messages published and not yet acknowledged."""
        return len(self._by_mid)

    def start(self, tp: TopicPartitionKey, offset: int) -> None:
        """``tp`` is read from ``offset`` on, which is also where it stands committed."""
        self._records[tp] = deque()
        self._next[tp] = offset
        self._committed[tp] = offset

    def add(self, tp: TopicPartitionKey, offset: int, mids: Sequence[int]) -> None:
        """The record at ``offset`` was published as the messages ``mids`` (in order of
        offsets within ``tp``)."""
        queue = self._records.setdefault(tp, deque())
        entry = [offset, len(mids)]
        if not mids and not queue:
            self._next[tp] = offset + 1
            return
        queue.append(entry)
        for mid in mids:
            self._by_mid[mid] = (tp, entry)

    def ack(self, mid: int) -> bool:
        """The broker acknowledged message ``mid``; ``False`` if it was not tracked (a
        message that belongs to no record, such as a re-published retained state)."""
        found = self._by_mid.pop(mid, None)
        if found is None:
            return False
        tp, entry = found
        entry[1] -= 1
        queue = self._records[tp]
        while queue and queue[0][1] == 0:
            self._next[tp] = queue.popleft()[0] + 1
        return True

    def replace(self, mid: int, token: int) -> bool:
        """Message ``mid`` is no longer awaited; its record waits for ``token`` instead (the
        delivery of its dead letter). ``False`` if ``mid`` was not tracked."""
        found = self._by_mid.pop(mid, None)
        if found is None:
            return False
        self._by_mid[token] = found
        return True

    def skip_to(self, tp: TopicPartitionKey, offset: int) -> None:
        """The partition's position moved to ``offset`` without a record (past a
        transaction marker): once every record before it is done, commit up to there."""
        if not self._records.get(tp) and offset > self._next.get(tp, offset):
            self._next[tp] = offset

    def committable(self) -> dict[TopicPartitionKey, int]:
        """Offsets to commit: each partition whose done prefix moved since it was last
        committed (:meth:`committed`)."""
        return {tp: n for tp, n in self._next.items() if n != self._committed.get(tp)}

    def committed(self, offsets: dict[TopicPartitionKey, int]) -> None:
        """Kafka confirmed the commit of ``offsets``."""
        self._committed.update(offsets)

    def forget(self, tps: Iterable[TopicPartitionKey]) -> None:
        """Stop tracking ``tps`` (unassigned): their messages still in flight no longer
        count for anything."""
        gone = set(tps)
        for tp in gone:
            self._records.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)
        for mid in [m for m, (tp, _) in self._by_mid.items() if tp in gone]:
            del self._by_mid[mid]
