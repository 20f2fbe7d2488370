"""One Kafka partition's records through the pipeline: the stream's order, for any replay.

The stream processor keeps its device states in quixstreams state and ``iotml batch``
keeps them in memory, but both go through these two steps in the order of a partition's
records, so both close the same windows at the same partition time (:mod:`models.clock`):

* :func:`on_reading`: a reading moves the partition time, runs the device's windower,
  closes the windows it completes (:func:`models.closing.close_windows`) and keeps the
  device in the clock's schedule;
* :func:`on_time`: when the partition time crosses a window boundary (or a heartbeat
  arrives), the devices due then are looked at: a quiet device's windows close at its own
  estimated time, ``device_silent`` opens, a device past its time-to-live is forgotten
  (its open alerts clear first), and the rest are scheduled again.

What stores the states is behind :class:`DeviceStore`; :class:`MemoryStore` keeps them in
dicts for replays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from iotml.core.records import Alert
from iotml.core.tags import carried_tags
from models.alerts import AlertParams
from models.bands import Baselines
from models.clock import (
    ClockRules,
    DictStore,
    Due,
    Schedule,
    device_time,
    due,
    elapsed,
    partition_time_after,
)
from models.closing import Closing, Predict, Shadow, close_windows
from models.device import DeviceState, evolve, new_state
from models.features import FeatureSpec, WindowStats
from models.pipeline import add_reading, advance, forget, observe, silence


class DeviceStore(Protocol):
    """Where one partition's device states and schedule live."""

    schedule: Schedule

    def device(self, dev: str) -> DeviceState: ...

    def save(self, dev: str, st: DeviceState, old: DeviceState) -> None: ...

    def forget(self, dev: str) -> None: ...

    def evict(self, dev: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ModelStage:
    """What closing windows needs of the running model (``predict=None``: no model stage;
    ``scoring``: score forecasts live; ``shadow``: a candidate scored beside it)."""

    spec: FeatureSpec
    params: AlertParams
    name: str
    version: str
    predict: Predict | None
    scoring: bool = True
    shadow: Shadow | None = None
    bands: Baselines | None = None  # per-device bands from training (deviation)
    kind: str | None = None  # what makes the forecasts (Artifact.kind), on the predictions


@dataclass(slots=True)
class ReadingOutcome:
    """What one reading did."""

    p: int  # the partition time after it
    old: DeviceState  # the device's state before it
    late: bool = False
    closing: Closing | None = None  # the windows it closed
    alerts: list[Alert] = field(default_factory=list)  # after the closing's (observe)


def on_reading(
    store: DeviceStore,
    p_before: int | None,
    dev: str,
    ts: int,
    value: float | None,
    arrived: int | None,
    model: ModelStage,
    grace_ms: int,
    rules: ClockRules,
    tags: Mapping[str, str] | None = None,
) -> ReadingOutcome:
    """A reading of ``dev`` at event time ``ts`` with ``tags`` (``value=None``: it lacks
    the model's metric, and only moves the partition time). The device keeps the latest
    tags (bounded, :func:`~iotml.core.tags.carried_tags`) for its outputs, this
    reading's included."""
    old = store.device(dev)
    p = partition_time_after(p_before, old.last_seen, old.seen_at, ts, rules, arrived)
    if value is None:
        return ReadingOutcome(p, old)
    st, closed, late = add_reading(old, ts, value, model.spec, grace_ms)
    if late:
        return ReadingOutcome(p, old, late=True)
    if tags is not None and tags != st.tags:
        kept = carried_tags(tags)
        if kept != st.tags:  # a new object only on a change: the store rewrites it then
            st = evolve(st, tags=kept)
    closing = None
    if closed:
        closing = close_stage([(dev, stats) for stats in closed], {dev: st}, model)
        st = closing.states[dev]
    st, alerts = observe(st, ts, model.version, seen_at=p)
    store.save(dev, st, old)
    # new, or back after going quiet: make sure the clock will look at it again
    if (old.seen_at is None or elapsed(p, old.seen_at) >= rules.idle_ms) and (
        not store.schedule.scheduled(dev)
    ):
        store.schedule.push(dev, p + rules.idle_ms, p)
    return ReadingOutcome(p, old, closing=closing, alerts=alerts)


def sweep_due(before: int | None, now_et: int, window_ms: int, heartbeat: bool) -> bool:
    """Whether moving the partition time from ``before`` to ``now_et`` sweeps."""
    return heartbeat or before is None or now_et // window_ms > before // window_ms


@dataclass(slots=True)
class Sweep:
    """The devices a sweep touches, in the order they were due."""

    old: dict[str, DeviceState] = field(default_factory=dict)  # as they were
    advanced: dict[str, DeviceState] = field(default_factory=dict)  # windows taken out
    closed: list[tuple[str, WindowStats]] = field(default_factory=list)  # oldest first
    due: dict[str, Due] = field(default_factory=dict)


def sweep(
    store: DeviceStore,
    before: int,
    now_et: int,
    spec: FeatureSpec,
    grace_ms: int,
    rules: ClockRules,
) -> Sweep:
    """The devices due as the partition time moves from ``before`` to ``now_et``, with
    the windows of the quiet ones closed at their own estimated time."""
    out = Sweep()
    for dev in store.schedule.pop(before, now_et):
        old = store.device(dev)
        if old.last_seen is None or old.seen_at is None:  # its state is gone
            store.forget(dev)
            continue
        d = due(now_et, old.seen_at, rules, old.episodes["device_silent"].open)
        st, closed = old, list[WindowStats]()
        if d.quiet:
            own = device_time(now_et, old.last_seen, old.seen_at)
            st, closed = advance(old, own, spec, grace_ms)
        out.old[dev] = old
        out.advanced[dev] = st
        out.due[dev] = d
        out.closed.extend((dev, stats) for stats in closed)
    return out


@dataclass(slots=True)
class TimeOutcome:
    """What moving the partition time did."""

    closing: Closing | None = None  # the quiet devices' windows
    alerts: list[Alert] = field(default_factory=list)  # device_silent and forget clears
    clock_closed: int = 0  # windows closed by the clock
    forgotten: int = 0  # devices forgotten


def on_time(
    store: DeviceStore,
    before: int,
    now_et: int,
    model: ModelStage,
    grace_ms: int,
    rules: ClockRules,
) -> TimeOutcome:
    """Handle the devices due as the partition time moves from ``before`` to ``now_et``."""
    found = sweep(store, before, now_et, model.spec, grace_ms, rules)
    out = TimeOutcome(clock_closed=len(found.closed))
    if not found.advanced:
        return out
    out.closing = close_stage(found.closed, found.advanced, model)
    for dev, st in out.closing.states.items():
        d = found.due[dev]
        assert st.last_seen is not None and st.seen_at is not None
        own = device_time(now_et, st.last_seen, st.seen_at)
        if d.silent:
            st, alerts = silence(st, own, model.params, model.version)
            out.alerts.extend(alerts)
        if d.forget:
            out.alerts.extend(forget(st, own, model.version))
            store.forget(dev)
            out.forgotten += 1
            continue
        store.save(dev, st, found.old[dev])
        if d.next_due is not None:
            store.schedule.push(dev, d.next_due, now_et)
        else:
            store.schedule.forget(dev)
        if d.quiet:
            store.evict(dev)
    return out


def close_stage(
    windows: list[tuple[str, WindowStats]], states: dict[str, DeviceState], model: ModelStage
) -> Closing:
    """Close ``windows`` with ``model``'s stage (:func:`models.closing.close_windows`)."""
    m = model
    return close_windows(
        windows,
        states,
        m.spec,
        m.params,
        m.name,
        m.version,
        m.predict,
        m.scoring,
        m.shadow,
        m.bands,
        m.kind,
    )


class MemoryStore:
    """A :class:`DeviceStore` in dicts (replays of recorded partitions)."""

    def __init__(self, bucket_ms: int) -> None:
        self.states: dict[str, DeviceState] = {}
        self.schedule = Schedule(DictStore(), "", bucket_ms)

    def device(self, dev: str) -> DeviceState:
        return self.states.get(dev) or new_state(dev)

    def save(self, dev: str, st: DeviceState, old: DeviceState) -> None:
        self.states[dev] = st

    def forget(self, dev: str) -> None:
        self.states.pop(dev, None)
        self.schedule.forget(dev)

    def evict(self, dev: str) -> None:
        """Nothing to do: every state is in memory anyway."""
