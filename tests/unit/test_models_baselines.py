"""The baselines `iotml evaluate` prints beside the model, on the same windows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.alerts import AlertParams
from models.baselines import ALPHAS, compare, fit_ridge, fit_ridge_validated, training_points
from models.cli._evaluate import baseline_lines
from models.evaluation import Evaluation
from models.features import FeatureSpec
from models.registry import Artifact
from models.replay import BatchView, window_series

HOUR = 3_600_000
DAY = 24 * HOUR
SPEC = FeatureSpec("v", HOUR, k=1, horizon_ms=HOUR, min_count=1)


def test_ridge_recovers_a_linear_relation():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, 0.0]
    y = 2.0 * X[:, 0] - 0.5 * X[:, 1] + 3.0
    ridge = fit_ridge(X, y, alpha=1e-8)
    np.testing.assert_allclose(ridge.predict(X), y, atol=1e-5)


def test_a_constant_feature_gets_no_weight_and_no_division_by_zero():
    X = np.column_stack([np.arange(10.0), np.ones(10)])
    ridge = fit_ridge(X, 2 * np.arange(10.0), alpha=1e-6)
    assert np.isfinite(ridge.coef).all() and ridge.coef[1] == 0.0


def test_the_penalty_is_chosen_on_the_validation_part():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 20))  # many features, few examples, only noise to fit
    y = rng.normal(size=60)
    validation = np.arange(60) >= 45
    assert fit_ridge_validated(X, y, validation).alpha == max(ALPHAS)
    assert fit_ridge_validated(X, y, np.zeros(60, bool)).alpha == ALPHAS[len(ALPHAS) // 2]


def test_training_points_are_the_models_training_period_and_devices():
    points = [("a", 0, 1.0), ("a", 10, 2.0), ("b", 10, 3.0), ("a", 30, 4.0)]
    manifest = {"training": {"first_ts": 0, "last_ts": 10, "devices": ["a"]}}
    assert training_points(points, manifest) == [("a", 0, 1.0), ("a", 10, 2.0)]
    assert training_points(points, {}) == []


def daily(days: int, start: int = 0) -> list[tuple[str, int, float]]:
    return [
        ("d", t * HOUR, 10 + 5 * math.sin(2 * math.pi * t / 24)) for t in range(start, days * 24)
    ]


def evaluation_of(points: list[tuple[str, int, float]], from_ms: int) -> Evaluation:
    """What `evaluate` gives for a model that forecasts no change (persistence)."""
    windows = window_series(points, SPEC).windows
    last = {(w.device_id, w.stats.end): w.stats.last for w in windows}
    scored, keys = [], []
    for w in windows:
        target = last.get((w.device_id, w.stats.end + HOUR))
        if w.row is not None and w.stats.end >= from_ms and target is not None:
            scored.append((w.stats.end + HOUR, w.stats.last, target, w.stats.last))
            keys.append((w.device_id, w.stats.end))
    return Evaluation({}, BatchView(windows=windows), scored, keys)


def artifact(first: int, last: int, val_from: int) -> Artifact:
    training = {
        "first_ts": first,
        "last_ts": last,
        "validation_from_ts": val_from,
        "devices": ["d"],
    }
    return Artifact("m", "v1", Path("."), {"training": training}, SPEC, AlertParams())


def test_on_a_daily_cycle_seasonal_naive_is_exact_and_ridge_learns_the_cycle():
    points = daily(days=4)
    result = compare(evaluation_of(points, 3 * DAY), points, artifact(0, 2 * DAY, 3 * DAY // 2))
    assert result["n"] == result["seasonal_naive_n"] > 20
    assert result["seasonal_naive"] == pytest.approx(0.0, abs=1e-9)
    assert result["persistence"] == result["model"] > 0.5
    assert result["ridge"] < 0.05 * result["persistence"]
    assert result["ridge_examples"] > 40


def test_seasonal_naive_is_not_available_without_a_day_before_and_says_so():
    points = daily(days=1)
    result = compare(evaluation_of(points, 12 * HOUR), points, artifact(0, 12 * HOUR, 9 * HOUR))
    assert result["seasonal_naive"] is None and result["seasonal_naive_n"] == 0
    assert "  seasonal naive  n/a (no window a day before the targets)" in baseline_lines(result)


def test_ridge_is_not_available_when_the_input_lacks_the_training_period():
    points = daily(days=3)
    result = compare(evaluation_of(points, 2 * DAY), points, artifact(-9 * DAY, -8 * DAY, -8 * DAY))
    assert result["ridge"] is None and result["ridge_examples"] == 0
    lines = baseline_lines(result)
    assert lines[0] == f"MAE on the same {result['n']} windows:"
    assert any(line.startswith("  ridge           n/a (0 training examples") for line in lines)
