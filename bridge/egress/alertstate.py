"""The retained alert state: which event each device and type's MQTT topic holds.

Egress publishes an alert event retained only if it is not older than the event already
retained there in this run (``order``: event time, a clear after an open). An older event
(the processor replaying after a crash, or the backlog behind a state re-published from
the alert-state topic) is still published, without the retain flag: subscribers see every
event at least once, and the retained message stays the newest state.

After each (re)connection the retained state is rebuilt from the compacted alert-state
topic: read to its end (a :class:`Snapshot`), then, once the ``alerts`` backlog read so
far has been published, every state of the snapshot that is not older than what is
retained is published again, retained.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from bridge.egress.messages import order
from iotml.core.records import Alert

__all__ = ["RetainedBook", "Snapshot", "StateEntry", "state_key"]

Order = tuple[int, int]


def state_key(alert: Alert) -> str:
    """The alert-state key of ``alert``: ``<device>/<type>`` (device ids never hold ``/``)."""
    return f"{alert.device_id}/{alert.type}"


@dataclass(frozen=True, slots=True)
class StateEntry:
    """The latest event of one device and type, as read from the alert-state topic."""

    alert: Alert
    raw: bytes
    tags: Mapping[str, str]

    @property
    def order(self) -> Order:
        return order(self.alert)


class RetainedBook:
    """The newest alert event published retained per device and type, this run."""

    def __init__(self) -> None:
        self._latest: dict[str, Order] = {}

    def __len__(self) -> int:
        return len(self._latest)

    def offer(self, alert: Alert) -> bool:
        """Whether ``alert`` is to be retained (it is not older than the retained event);
        if so it is recorded as the retained event."""
        key, new = state_key(alert), order(alert)
        current = self._latest.get(key)
        if current is not None and new < current:
            return False
        self._latest[key] = new
        return True


@dataclass
class Snapshot:
    """The alert-state topic as read to its end: the newest event per device and type
    (the compacted topic may still hold older values of a key, and a processor replay may
    write an old one again after a newer one)."""

    entries: dict[str, StateEntry] = field(default_factory=dict)

    def put(self, entry: StateEntry) -> None:
        key = state_key(entry.alert)
        current = self.entries.get(key)
        if current is None or entry.order >= current.order:
            self.entries[key] = entry

    def delete(self, key: str) -> None:
        """A tombstone: the key is gone from the topic."""
        self.entries.pop(key, None)

    def in_order(self) -> Iterator[StateEntry]:
        """The entries by event time (so each device's states go out in their order)."""
        return iter(sorted(self.entries.values(), key=lambda e: (e.alert.ts, e.order)))

    @property
    def open_count(self) -> int:
        return sum(1 for e in self.entries.values() if e.alert.event == "open")
