"""The partition clock: when a device counts as quiet, silent or gone, and a schedule that
finds those devices without looking at the others.

Windows close on a device's own readings (its watermark). Devices that stop sending need
a clock of their own kind: the *partition time* ``P``, a deterministic function of the
records of one Kafka partition in order, so that the stream, ``iotml batch`` and any other
replay of the same records reach the same decisions.

``P`` does not follow device clocks. A reading that carries its arrival time (the
bridge's receive time, header ``iotml.received_at``: one clock for the whole fleet, set
when the message reached the platform) moves ``P`` to that time. A reading without one
(written to Kafka by another producer) moves ``P`` by how far its device's own clock moved
since that device's previous reading, counted from where ``P`` stood then, so a new device
does not move ``P`` at all::

    arrived:     P' = max(P, min(arrived, P + max_step))
    otherwise:   P' = max(P, min(seen_at + (ts - last_seen), P + max_step))

So a device whose clock is minutes off in either direction neither drags its neighbours'
windows forward nor is dragged, and a device uploading hours of buffered readings does not
age the others: only the *elapsed* partition time ``P - seen_at`` since a device last spoke
is ever compared with a threshold, and a device's own time is estimated as
``last_seen + (P - seen_at)``. One record moves ``P`` by at most ``max_step`` (half the
idle time), so no single record can make a device that is still sending look quiet.
Heartbeats (idle partitions) move ``P`` directly.

Thresholds, in elapsed partition time since the device's latest reading:

* ``idle_ms``: the device is quiet; its open windows close at its estimated own time;
* ``silence_ms`` (0: off): ``device_silent`` opens;
* ``ttl_ms`` (0: off): the device is forgotten (its open alerts clear first).

:class:`Schedule` keeps, per bucket of partition time, a linked list of the devices due
in it, threaded through one small link record per device: no record grows with the fleet,
and each crossing of a bucket boundary touches only the devices due then.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from models.features import FeatureSpec


class KeyValue(Protocol):
    """The part of a key-value store the schedule needs (quixstreams ``State``, a dict)."""

    def get(self, key: Any, default: Any = None) -> Any: ...

    def set(self, key: Any, value: Any) -> None: ...

    def delete(self, key: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class ClockRules:
    idle_ms: int
    silence_ms: int = 0
    ttl_ms: int = 0
    bucket_ms: int = 10_000

    def __post_init__(self) -> None:
        if self.idle_ms <= 0 or self.bucket_ms <= 0:
            raise ValueError("idle_ms and bucket_ms must be positive")

    @property
    def max_step(self) -> int:
        """The most one reading can move the partition time."""
        return max(1, self.idle_ms // 2)


def rules_for(
    spec: FeatureSpec, grace_ms: int, idle_ms: int | None, silence_ms: int, ttl_ms: int
) -> ClockRules:
    """The clock's thresholds for a model; ``idle_ms=None`` means one window plus the
    grace period."""
    idle = idle_ms if idle_ms is not None else spec.window_ms + grace_ms
    return ClockRules(idle, silence_ms, ttl_ms, spec.window_ms)


def partition_time_after(
    p: int | None,
    last_seen: int | None,
    seen_at: int | None,
    ts: int,
    rules: ClockRules,
    arrived: int | None = None,
) -> int:
    """Partition time after a reading at event time ``ts`` (that arrived at ``arrived``,
    when known) of a device whose previous reading was at ``last_seen`` when the partition
    time was ``seen_at`` (``None``: a new device)."""
    if p is None:
        return arrived if arrived is not None else ts
    if arrived is not None:
        projected = arrived
    elif last_seen is None or seen_at is None:
        return p
    else:
        projected = seen_at + (ts - last_seen)
    return max(p, min(projected, p + rules.max_step))


def arrival_time(value: str | None) -> int | None:
    """The arrival time in a ``iotml.received_at`` header value (``None`` if unusable)."""
    if value is None or not value.isdigit() or len(value) > 15:
        return None
    return int(value)


def elapsed(p: int, seen_at: int) -> int:
    """Partition time since the device's latest reading."""
    return max(0, p - seen_at)


def device_time(p: int, last_seen: int, seen_at: int) -> int:
    """The device's own event time, estimated from the partition time."""
    return last_seen + elapsed(p, seen_at)


@dataclass(frozen=True, slots=True)
class Due:
    """What is due for a device at partition time ``p``."""

    quiet: bool
    silent: bool
    forget: bool
    next_due: int | None  # partition time of the next check (None: nothing left to do)


def due(p: int, seen_at: int, rules: ClockRules, silent_open: bool) -> Due:
    """Which thresholds a device has passed at ``p``, and when to look at it next."""
    gone = elapsed(p, seen_at)
    forget = 0 < rules.ttl_ms <= gone
    later = [
        seen_at + t
        for t in (rules.idle_ms, rules.silence_ms if not silent_open else 0, rules.ttl_ms)
        if t > 0 and seen_at + t > p
    ]
    return Due(
        quiet=gone >= rules.idle_ms,
        silent=0 < rules.silence_ms <= gone,
        forget=forget,
        next_due=None if forget or not later else min(later),
    )


class Schedule:
    """Devices due per bucket of partition time, as linked lists in a key-value store.

    Keys (under ``prefix``): ``b/<bucket>`` = the first device of the bucket's list;
    ``l/<device>`` = ``[bucket, next device]``. A device is in at most one list: it is
    pushed when first seen and again only after it was popped, so readings cost nothing
    here. A device popped before it is due is pushed again at its real due time.
    """

    def __init__(self, kv: KeyValue, prefix: str, bucket_ms: int) -> None:
        self._kv = kv
        self._prefix = prefix
        self._bucket_ms = bucket_ms

    def push(self, device: str, due_at: int, now: int) -> None:
        """Schedule ``device`` at partition time ``due_at`` (never before the next
        bucket boundary after ``now``: buckets at or before ``now`` were popped)."""
        bucket = max(due_at // self._bucket_ms, now // self._bucket_ms)
        head_key = f"{self._prefix}b/{bucket}"
        self._kv.set(f"{self._prefix}l/{device}", [bucket, self._kv.get(head_key)])
        self._kv.set(head_key, device)

    def scheduled(self, device: str) -> bool:
        """Whether ``device`` is in a list (one read; callers ask only on rare paths)."""
        return self._kv.get(f"{self._prefix}l/{device}") is not None

    def forget(self, device: str) -> None:
        """Drop a popped device's link (it will not be pushed again)."""
        self._kv.delete(f"{self._prefix}l/{device}")

    def pop(self, before: int, now: int) -> Iterator[str]:
        """The devices of every bucket that ended in ``(before, now]``, each list emptied
        as it is read. Callers push the devices they keep."""
        for bucket in range(before // self._bucket_ms, now // self._bucket_ms):
            head_key = f"{self._prefix}b/{bucket}"
            device = self._kv.get(head_key)
            if device is None:
                continue
            self._kv.delete(head_key)
            while device is not None:
                link = self._kv.get(f"{self._prefix}l/{device}")
                nxt = link[1] if link and link[0] == bucket else None
                yield device
                device = nxt


class DictStore(dict[Any, Any]):
    """A :class:`KeyValue` over a dict (replays, tests)."""

    def set(self, key: Any, value: Any) -> None:
        self[key] = value

    def delete(self, key: Any) -> None:
        self.pop(key, None)
