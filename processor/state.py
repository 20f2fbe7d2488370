"""Device state in quixstreams state, with a read-through cache per partition.

The readings topic is consumed with a constant key, so the quixstreams ``State`` a record
sees is its partition's whole store. Keys:

* ``meta``: the partition time (:mod:`models.clock`);
* ``<ns>/h/<device>``: hot per-reading part of the device state (watermark, last_seen,
  open windows, seen_at), written per reading;
* ``<ns>/c/<device>``: the rest (closed-window history, pending forecasts, alert
  episodes, the latest readings' tags), written only when a window closes, an alert
  changes or the tags change (rarely: they name the site and the like);
* ``<ns>/b/<bucket>`` and ``<ns>/l/<device>``: the schedule of devices due for the clock
  (:class:`models.clock.Schedule`).

No key holds a list of devices: every record's size is independent of the fleet, and a
forgotten device's keys are deleted (tombstones in the changelog).

``<ns>`` is a digest of the model's metric, window, K and features: a model with another
window starts from fresh device state rather than misreading the old one.

The decoded states of the devices that are sending stay in memory (quiet devices are
evicted, so memory follows the active fleet); the cache is dropped whenever a record does
not directly follow the last one this process handled in that partition (rebalance,
restart, rewind), so another replica's writes are never missed.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from models import DeviceState, new_state
from models.clock import Schedule
from processor.model import ActiveModel

META = "meta"


class StateLike(Protocol):
    """The part of quixstreams' ``State`` the engine uses."""

    def get(self, key: Any, default: Any = None) -> Any: ...

    def set(self, key: Any, value: Any) -> None: ...

    def delete(self, key: Any) -> None: ...


class _Rebound:
    """The state of the record being handled, for the schedule (rebound per record)."""

    __slots__ = ("part",)

    def __init__(self, part: PartitionStore) -> None:
        self.part = part

    def get(self, key: Any, default: Any = None) -> Any:
        return self.part.state.get(key, default)

    def set(self, key: Any, value: Any) -> None:
        self.part.state.set(key, value)

    def delete(self, key: Any) -> None:
        self.part.state.delete(key)


def namespace(model: ActiveModel) -> str:
    """State key namespace of a model's feature layout."""
    return hashlib.sha256(model.fingerprint().encode()).hexdigest()[:10]


class PartitionStore:
    """The device states and event time of one partition, read through a cache.

    ``state`` is the quixstreams state of the record being handled (rebound per record
    by :meth:`StateCache.open`)."""

    __slots__ = ("_devices", "event_time", "last_offset", "ns", "schedule", "state")

    def __init__(self, ns: str, state: StateLike, bucket_ms: int) -> None:
        self.ns = ns
        self.state = state
        self.last_offset = -2
        self.event_time: int | None = state.get(META)
        self._devices: dict[str, DeviceState] = {}
        self.schedule = Schedule(_Rebound(self), f"{ns}/", bucket_ms)

    def set_event_time(self, event_time: int) -> None:
        self.event_time = event_time
        self.state.set(META, event_time)

    def cached(self) -> int:
        """How many device states are held in memory."""
        return len(self._devices)

    def evict(self, dev: str) -> None:
        """Drop ``dev`` from memory (it is quiet; its state stays in the store)."""
        self._devices.pop(dev, None)

    def forget(self, dev: str) -> None:
        """Delete every trace of ``dev`` (its keys become changelog tombstones)."""
        self._devices.pop(dev, None)
        self.state.delete(f"{self.ns}/h/{dev}")
        self.state.delete(f"{self.ns}/c/{dev}")
        self.schedule.forget(dev)

    def device(self, dev: str) -> DeviceState:
        """The state of ``dev`` (a fresh one for a device never seen)."""
        st = self._devices.get(dev)
        if st is not None:
            return st
        hot = self.state.get(f"{self.ns}/h/{dev}")
        if hot is None:
            st = new_state(dev)
        else:
            cold = self.state.get(f"{self.ns}/c/{dev}") or {}
            st = DeviceState.from_dict(
                {
                    **cold,
                    "device_id": dev,
                    "watermark": hot[0],
                    "last_seen": hot[1],
                    "buffer": hot[2],
                    "seen_at": hot[3] if len(hot) > 3 else None,
                }
            )
        self._devices[dev] = st
        return st

    def save(self, dev: str, st: DeviceState, old: DeviceState) -> None:
        """Store the new state ``st`` of ``dev``, writing only the parts that changed
        since ``old`` (the state :meth:`device` returned)."""
        self._devices[dev] = st
        if (
            st.buffer is not old.buffer
            or st.watermark != old.watermark
            or st.last_seen != old.last_seen
            or st.seen_at != old.seen_at
            or old.last_seen is None
        ):
            hot = [st.watermark, st.last_seen, st.stored_buffer(), st.seen_at]
            self.state.set(f"{self.ns}/h/{dev}", hot)
        if (
            st.history is not old.history
            or st.pending is not old.pending
            or st.episodes is not old.episodes
            or st.tags is not old.tags
            or st.errors is not old.errors
            or st.band is not old.band
            or st.likelihood != old.likelihood
            or st.band_version != old.band_version
        ):
            self.state.set(f"{self.ns}/c/{dev}", st.cold_dict())


class StateCache:
    """The :class:`PartitionStore` of each partition this process handles."""

    def __init__(self) -> None:
        self._parts: dict[int, PartitionStore] = {}
        self._ns: tuple[ActiveModel | None, str] = (None, "")

    def drop(self, partition: int) -> None:
        """Forget the cached states of ``partition`` (they are re-read from the store)."""
        self._parts.pop(partition, None)

    def cached(self) -> int:
        """Device states held in memory over every partition."""
        return sum(p.cached() for p in self._parts.values())

    def open(
        self, partition: int, offset: int, state: StateLike, model: ActiveModel
    ) -> PartitionStore:
        """The store for the record at ``partition``/``offset``; the cached one when the
        record directly follows the last one handled there under the same layout."""
        if self._ns[0] is not model:
            self._ns = (model, namespace(model))
        ns = self._ns[1]
        part = self._parts.get(partition)
        if part is None or offset != part.last_offset + 1 or part.ns != ns:
            part = PartitionStore(ns, state, model.spec.window_ms)
            self._parts[partition] = part
        part.state = state
        part.last_offset = offset
        return part
