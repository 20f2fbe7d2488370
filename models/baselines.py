"""What a forecaster has to beat, scored on the windows ``iotml evaluate`` scores it on.

* **persistence**: the window's last value (no change);
* **seasonal naive**: the last value of the window that ended one day before the target
  (same device); ``None`` when no such window holds ``min_count`` readings;
* **ridge**: a linear model on the forecaster's own features, fitted in closed form on
  the same training data (the readings of the model's training period in the input) and
  to the same target (the change from the last value). Its penalty is chosen on the
  model's validation part, then it is refitted on all of the training examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from models.replay import Point, training_examples, window_series

if TYPE_CHECKING:
    from models.evaluation import Evaluation
    from models.features import FeatureSpec
    from models.registry import Artifact

DAY_MS = 86_400_000
#: Ridge penalties tried, per training example (the features are standardised).
ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


@dataclass(frozen=True)
class Ridge:
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    alpha: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, dtype=np.float64) - self.mean) / self.scale) @ self.coef + (
            self.intercept
        )


def fit_ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> Ridge:
    """Least squares with an L2 penalty of ``alpha * len(X)`` on standardised features
    (the intercept is not penalised)."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0  # a constant feature then has a zero column and weight
    Z = (X - mean) / scale
    intercept = float(np.mean(y))
    gram = Z.T @ Z + alpha * len(X) * np.eye(Z.shape[1])
    coef = np.linalg.solve(gram, Z.T @ (np.asarray(y, dtype=np.float64) - intercept))
    return Ridge(mean, scale, coef, intercept, alpha)


def fit_ridge_validated(X: np.ndarray, y: np.ndarray, validation: np.ndarray) -> Ridge:
    """The penalty with the lowest absolute error on ``validation`` (a mask) when fitted
    on the rest, refitted on everything; the middle penalty if either side is empty."""
    train = ~validation
    alpha = ALPHAS[len(ALPHAS) // 2]
    if train.sum() >= 2 and validation.sum() >= 1:
        errors = [
            float(
                np.mean(
                    np.abs(fit_ridge(X[train], y[train], a).predict(X[validation]) - y[validation])
                )
            )
            for a in ALPHAS
        ]
        alpha = ALPHAS[int(np.argmin(errors))]
    return fit_ridge(X, y, alpha)


def training_points(points: Sequence[Point], manifest: dict[str, Any]) -> list[Point]:
    """The readings of ``points`` in the model's training period (and devices, where the
    manifest lists them)."""
    training = manifest.get("training") or {}
    first, last = training.get("first_ts"), training.get("last_ts")
    if first is None or last is None:
        return []
    listed = training.get("devices")  # older manifests list the devices; newer count them
    devices = set(listed) if isinstance(listed, list) else set()
    return [p for p in points if first <= p[1] <= last and (not devices or p[0] in devices)]


def compare(
    evaluation: Evaluation, points: Sequence[Point], artifact: Artifact, grace_ms: int = 0
) -> dict[str, Any]:
    """The mean absolute error of each baseline and of the model on the evaluation's
    scored windows (see the module doc), with how many windows each covers."""
    X, y, last, ends = ridge_examples(points, artifact, grace_ms)
    ridge = fit_baseline(X, y, last, ends, artifact.manifest)
    inputs = ridge_inputs(evaluation, artifact.spec)
    return summary(
        error_sums(evaluation, artifact.spec), ridge, len(X), ridge_error(ridge, *inputs)
    )


def error_sums(evaluation: Evaluation, spec: FeatureSpec) -> dict[str, float]:
    """The sums of absolute errors of the model, persistence and seasonal naive over the
    scored windows, and their counts: they add up over parts of the input holding all
    readings of their devices (seasonal naive looks only at the device's own windows)."""
    arr = np.asarray([s[1:] for s in evaluation.scored], dtype=np.float64).reshape(-1, 3)
    forecast, actual, last = arr[:, 0], arr[:, 1], arr[:, 2]
    usable = {
        (w.device_id, w.stats.end): w.stats.last
        for w in evaluation.view.windows
        if w.stats.count >= spec.min_count
    }
    seasonal = [
        usable.get((d, s[0] - DAY_MS))
        for (d, _), s in zip(evaluation.keys, evaluation.scored, strict=True)
    ]
    have = np.asarray([v is not None for v in seasonal], dtype=bool)
    day_before = np.asarray([v for v in seasonal if v is not None], dtype=np.float64)
    return {
        "n": len(arr),
        "model_abs": _abs_sum(forecast, actual),
        "persistence_abs": _abs_sum(last, actual),
        "seasonal_n": int(have.sum()),
        "seasonal_abs": _abs_sum(day_before, actual[have]),
    }


def ridge_examples(
    points: Sequence[Point], artifact: Artifact, grace_ms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, last, window_end)`` of the ridge's training data: the examples of the
    readings of the model's training period (per device, so a partition gives its own)."""
    spec = artifact.spec
    train_points = training_points(points, artifact.manifest)
    return training_examples(window_series(train_points, spec, grace_ms).windows, spec)


def fit_baseline(
    X: np.ndarray, y: np.ndarray, last: np.ndarray, ends: np.ndarray, manifest: dict[str, Any]
) -> Ridge | None:
    """The ridge baseline fitted on training examples (``None``: fewer than two), its
    penalty chosen on the model's validation part."""
    if len(X) < 2:
        return None
    val_from = (manifest.get("training") or {}).get("validation_from_ts")
    validation = ends >= val_from if val_from is not None else np.zeros(len(X), dtype=bool)
    return fit_ridge_validated(X, y - last, validation)


def ridge_inputs(
    evaluation: Evaluation, spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(feature rows, last values, actual values)`` of the scored windows."""
    rows = {
        (w.device_id, w.row.window_end): w.row.vector
        for w in evaluation.view.windows
        if w.row is not None
    }
    width = len(spec.names())
    vectors = np.asarray([rows[key] for key in evaluation.keys], dtype=np.float64)
    arr = np.asarray([s[2:] for s in evaluation.scored], dtype=np.float64).reshape(-1, 2)
    return vectors.reshape(-1, width), arr[:, 1], arr[:, 0]


def ridge_error(
    ridge: Ridge | None, vectors: np.ndarray, last: np.ndarray, actual: np.ndarray
) -> float:
    """The sum of the ridge's absolute errors on the scored windows (0 without a ridge)."""
    if ridge is None or not len(vectors):
        return 0.0
    return _abs_sum(last + ridge.predict(vectors), actual)


def summary(
    sums: dict[str, float], ridge: Ridge | None, examples: int, ridge_abs: float
) -> dict[str, Any]:
    """The baselines' report from the (summed) :func:`error_sums` and ridge error."""
    n, seasonal_n = int(sums["n"]), int(sums["seasonal_n"])
    out: dict[str, Any] = {
        "n": n,
        "persistence": _mean(sums["persistence_abs"], n),
        "model": _mean(sums["model_abs"], n),
        "seasonal_naive_n": seasonal_n,
        "seasonal_naive": _mean(sums["seasonal_abs"], seasonal_n) if seasonal_n else None,
    }
    if ridge is None:
        why = f"{examples} training examples: the input lacks the model's training period"
        out.update({"ridge": None, "ridge_examples": examples, "ridge_note": why})
    else:
        out.update(
            {"ridge": _mean(ridge_abs, n), "ridge_examples": examples, "ridge_alpha": ridge.alpha}
        )
    return out


def _abs_sum(forecast: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sum(np.abs(forecast - actual)))


def _mean(total: float, n: int) -> float:
    # the sum over n: np.mean's own division, so one process reports what it always did
    return round(total / n, 6)
