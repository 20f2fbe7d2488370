"""Device state in the partition's store and its read-through cache."""

from __future__ import annotations

import numpy as np

from models import AlertParams, FeatureSpec, add_reading, new_state
from processor.model import ActiveModel
from processor.state import StateCache
from tests.unit.test_processor_core import DictState

T0 = 1_700_000_000_000
SPEC = FeatureSpec(metric="temp", window_ms=10_000, k=1, horizon_ms=20_000, min_count=1)


class Zero:
    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.zeros(len(X))


def model(spec: FeatureSpec = SPEC) -> ActiveModel:
    return ActiveModel("m", "v1", spec, AlertParams(), Zero())


def test_a_saved_device_state_reads_back_from_the_store_alone():
    store, m = DictState(), model()
    part = StateCache().open(0, 0, store, m)
    old = part.device("d1")
    st, _, _ = add_reading(old, T0 + 1_000, 21.5, SPEC)
    part.save("d1", st, old)
    part.set_event_time(T0 + 1_000)

    fresh = StateCache().open(0, 1, store, m)
    assert fresh.event_time == T0 + 1_000
    assert fresh.device("d1").to_dict() == st.to_dict()


def test_every_cold_field_reads_back_and_defaults_are_not_stored():
    from models.alerts import EpisodeState
    from models.bands import Baseline
    from models.device import PendingForecast, evolve
    from models.likelihood import ErrorStats

    store, m = DictState(), model()
    part = StateCache().open(0, 0, store, m)
    old = part.device("d1")
    st, _, _ = add_reading(old, T0 + 1_000, 21.5, SPEC)
    part.save("d1", st, old)
    assert f"{part.ns}/c/d1" not in store.data  # only the hot part moved

    episodes = dict(st.episodes, deviation=EpisodeState(T0, True, None))
    full = evolve(
        st,
        pending={T0 + 20_000: PendingForecast(22.0, 21.5, "v1", 21.9, "v2")},
        episodes=episodes,
        errors=ErrorStats(0.5, 0.1, 7, (0.4, 0.6)),
        likelihood=0.93,
        band=Baseline.from_list([21.0, 1.5, 40]),
        band_version="v1",
        tags={"site": "a"},
    )
    part.save("d1", full, st)
    assert "buffer" not in store.data[f"{part.ns}/c/d1"]
    ended = evolve(full, episodes=st.episodes, pending={})  # back at defaults: not stored
    assert set(ended.cold_dict()) == {
        "format",
        "errors",
        "likelihood",
        "band",
        "band_version",
        "tags",
    }
    fresh = StateCache().open(0, 1, store, m)
    assert fresh.device("d1").to_dict() == full.to_dict()


def test_the_cache_is_dropped_when_a_record_does_not_follow_the_last_one():
    store, m = DictState(), model()
    cache = StateCache()
    part = cache.open(0, 0, store, m)
    old = part.device("d1")
    other = StateCache().open(0, 1, store, m)  # another replica writes meanwhile
    st, _, _ = add_reading(other.device("d1"), T0, 30.0, SPEC)
    other.save("d1", st, other.device("d1"))
    assert cache.open(0, 1, store, m).device("d1") is old  # directly follows: cached
    assert cache.open(0, 5, store, m).device("d1").to_dict() == st.to_dict()


def test_a_model_with_another_window_starts_from_fresh_device_state():
    store = DictState()
    part = StateCache().open(0, 0, store, model())
    st, _, _ = add_reading(part.device("d1"), T0, 30.0, SPEC)
    part.save("d1", st, part.device("d1"))
    wider = FeatureSpec(metric="temp", window_ms=20_000, k=1, horizon_ms=20_000, min_count=1)
    again = StateCache().open(0, 1, store, model(wider))
    assert again.device("d1").to_dict() == new_state("d1").to_dict()


def test_no_stored_record_grows_with_the_number_of_devices():
    store, m = DictState(), model()
    part = StateCache().open(0, 0, store, m)
    for i in range(2_000):
        dev = f"device-{i:05d}-" + "x" * 230  # long ids, as fleets have
        old = part.device(dev)
        st, _, _ = add_reading(old, T0 + i, 20.0, SPEC)
        part.save(dev, st, old)
        part.schedule.push(dev, T0 + 10_000, T0)
    assert max(len(v) for v in store.data.values()) < 1_000


def test_a_forgotten_device_leaves_no_key_behind_and_quiet_ones_leave_memory():
    store, m = DictState(), model()
    part = StateCache().open(0, 0, store, m)
    old = part.device("d1")
    st, _, _ = add_reading(old, T0, 20.0, SPEC)
    part.save("d1", st, old)
    part.schedule.push("d1", T0 + 10_000, T0)
    part.evict("d1")
    assert part.cached() == 0 and part.device("d1").to_dict() == st.to_dict()
    assert list(part.schedule.pop(T0, T0 + 20_000)) == ["d1"]
    part.forget("d1")
    assert set(store.data) == set()
