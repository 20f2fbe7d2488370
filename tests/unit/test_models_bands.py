"""Per-device baselines and the anomaly likelihood: pure functions on recorded series."""

from __future__ import annotations

import math
import random

import pytest

from models.bands import Baseline, Baselines, adapt, fit_rate, learn, learn_baselines, shifted
from models.likelihood import ErrorStats, LikelihoodParams, likelihood, log_likelihood, score


def noisy(level: float, spread: float, n: int, seed: int = 1) -> list[float]:
    rnd = random.Random(seed)
    return [rnd.gauss(level, spread) for _ in range(n)]


def test_a_band_is_robust_to_a_fault_inside_the_training_data():
    means = noisy(53.0, 0.5, 200) + [28.0] * 10
    b = learn(means, 1e-6)
    assert b is not None
    assert b.level == pytest.approx(53.0, abs=0.2)
    assert b.spread == pytest.approx(0.5, rel=0.25)
    assert abs(b.deviation(28.0)) > 40


def test_devices_with_enough_history_get_their_own_band_the_rest_the_fleets():
    bs = learn_baselines({"hot": noisy(70, 1, 50), "cold": noisy(20, 1, 50), "new": [40.0] * 3})
    assert bs is not None
    assert bs.of("hot").level == pytest.approx(70, abs=0.5)
    assert bs.of("new") is bs.fleet
    assert bs.z >= 4.0
    assert Baselines.from_dict(bs.to_dict()) == bs


def test_adapting_follows_a_slow_drift_and_keeps_a_spread_floor():
    b = Baseline(50.0, 1.0, 100)
    for _ in range(500):
        b = adapt(b, 51.0, 0.01, 0.05)
    assert b.level == pytest.approx(51.0, abs=0.05)
    assert b.spread >= 0.05
    assert adapt(b, math.nan, 0.01, 0.05) == b


def test_the_likelihood_has_no_opinion_until_warm_then_flags_a_burst_of_errors():
    p = LikelihoodParams(rate=0.02, short=3, warmup=30)
    stats, values = ErrorStats(), []
    for e in noisy(0.0, 1.0, 200, seed=3):
        stats, lk = score(stats, e, p)
        values.append(lk)
    assert values[:29] == [0.5] * 29
    assert max(values[40:]) < 0.9999
    burst = []
    for _ in range(3):
        stats, lk = score(stats, 8.0, p)
        burst.append(lk)
    assert burst[-1] > 0.99999
    assert log_likelihood(burst[-1]) > 0.5


def test_the_same_threshold_means_the_same_on_a_calm_and_a_noisy_device():
    p = LikelihoodParams()
    for scale in (0.01, 100.0):
        stats = ErrorStats()
        for e in noisy(0.0, scale, 300, seed=7):
            stats, _ = score(stats, e, p)
        _, lk = score(stats, 0.5 * scale, p)
        assert 0.05 < lk < 0.99
    assert likelihood(ErrorStats.from_list(ErrorStats().to_list()), p) == 0.5


def test_the_rate_follows_a_smoothly_wandering_device_and_averages_a_noisy_one():
    rnd = random.Random(5)
    wandering, level = [], 50.0
    for _ in range(400):
        level += rnd.gauss(0, 0.5)
        wandering.append(level + rnd.gauss(0, 0.02))
    assert fit_rate([wandering]) >= 0.5
    assert fit_rate([noisy(50, 1, 400)]) <= 0.05
    bs = learn_baselines({"a": wandering, "b": [x + 10 for x in wandering]})
    assert bs is not None and bs.rate >= 0.5
    assert bs.of("a").spread < 1.0  # the misses of the next window, not the wander


def test_a_band_off_its_device_follows_it_without_the_jump():
    b = Baseline(53.0, 0.1, 100)
    b = shifted(b, 28.0, 1.0)
    assert (b.level, b.shift) == (53.0, -25.0)
    b = shifted(b, 29.0, 1.0)  # the device warms by one degree under its fault
    assert b.level == pytest.approx(54.0)
    assert Baseline.from_list(b.to_list()) == b
    assert Baseline.from_list([53.0, 0.1, 100]) == Baseline(53.0, 0.1, 100)
