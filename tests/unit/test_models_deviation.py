"""``deviation`` stays open while a device is off its own band, and the likelihood-based
``anomaly``, on recorded series through the window stage."""

from __future__ import annotations

import random

import numpy as np

from models import AlertParams, FeatureSpec, WindowStats
from models.bands import learn_baselines
from models.closing import close_windows
from models.device import DeviceState

SPEC = FeatureSpec(metric="temp", window_ms=10_000, k=1, horizon_ms=10_000, min_count=1)
T0 = 1_700_000_000_000


def windows(levels: list[float], seed: int = 2) -> list[WindowStats]:
    rnd = random.Random(seed)
    out = []
    for i, level in enumerate(levels):
        start = T0 + i * SPEC.window_ms
        pts = [(start + j * 1000, level + rnd.gauss(0, 0.3)) for j in range(10)]
        out.append(WindowStats.from_points(pts, start, start + SPEC.window_ms))
    return out


def replay(levels, params, predict=None, bands=None, device="dev-0003"):
    state: dict[str, DeviceState] = {}
    events, preds = [], []
    for stats in windows(levels):
        closing = close_windows(
            [(device, stats)], state, SPEC, params, "m", "v1", predict, bands=bands
        )
        state = closing.states
        events += [(a.type, a.event, (a.ts - T0) // SPEC.window_ms) for a in closing.alerts]
        preds += closing.predictions
    return events, preds


def test_a_level_drop_stays_alerted_while_it_lasts_and_clears_when_the_device_is_back():
    # the demo's dev-0003: about 53, falls to 28 for 60 windows, then comes back (events
    # are stamped with the end of the window that decided them)
    levels = [53.0] * 40 + [28.0] * 60 + [53.0] * 20
    params = AlertParams(deviation_z=6.0)
    events, _ = replay(levels, params)
    dev = [e for e in events if e[0] == "deviation"]
    assert dev == [("deviation", "open", 41), ("deviation", "cleared", 101)]


def test_a_trained_band_judges_a_device_from_its_first_window():
    bands = learn_baselines({"dev-0003": [53.0 + 0.1 * (i % 5) for i in range(50)]})
    assert bands is not None
    events, _ = replay(
        [53.0] * 3 + [28.0] * 5 + [53.0] * 3, AlertParams(deviation_z=6.0), bands=bands
    )
    assert [e for e in events if e[0] == "deviation"] == [
        ("deviation", "open", 4),
        ("deviation", "cleared", 9),
    ]


def test_the_band_does_not_learn_a_fault_as_normal():
    levels = [53.0] * 30 + [45.0] * 400  # off by far more than z spreads for a long time
    events, _ = replay(levels, AlertParams(deviation_z=6.0))
    assert [e for e in events if e[0] == "deviation"] == [("deviation", "open", 31)]


def test_the_anomaly_likelihood_is_carried_on_predictions_and_opens_on_a_jump():
    def persistence(X: np.ndarray) -> np.ndarray:
        return X[:, SPEC.names().index("last")].astype(np.float64)

    params = AlertParams(anomaly_likelihood=0.9999, likelihood_warmup=30)
    levels = [20.0] * 60 + [35.0] + [20.0] * 20
    events, preds = replay(levels, params, predict=persistence)
    assert preds[0].anomaly_likelihood is None  # nothing judged yet
    assert preds[10].anomaly_likelihood == 0.5  # no opinion while it learns
    assert all(p.anomaly_likelihood is not None for p in preds[40:])
    assert ("anomaly", "open", 61) in events
    assert all(t >= 61 for kind, e, t in events if kind == "anomaly")
