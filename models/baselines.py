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
    spec = artifact.spec
    arr = np.asarray([s[1:] for s in evaluation.scored], dtype=np.float64)
    forecast, actual, last = arr[:, 0], arr[:, 1], arr[:, 2]
    out: dict[str, Any] = {
        "n": len(arr),
        "persistence": _mae(last, actual),
        "model": _mae(forecast, actual),
    }
    usable = {
        (w.device_id, w.stats.end): w.stats.last
        for w in evaluation.view.windows
        if w.stats.count >= spec.min_count
    }
    seasonal = [
        usable.get((d, s[0] - DAY_MS))
        for (d, _), s in zip(evaluation.keys, evaluation.scored, strict=True)
    ]
    have = np.asarray([v is not None for v in seasonal])
    out["seasonal_naive_n"] = int(have.sum())
    out["seasonal_naive"] = (
        _mae(np.asarray([v for v in seasonal if v is not None]), actual[have])
        if have.any()
        else None
    )
    out.update(_ridge(evaluation, points, artifact, grace_ms, actual, last))
    return out


def _ridge(
    evaluation: Evaluation,
    points: Sequence[Point],
    artifact: Artifact,
    grace_ms: int,
    actual: np.ndarray,
    last: np.ndarray,
) -> dict[str, Any]:
    spec = artifact.spec
    train_points = training_points(points, artifact.manifest)
    X, y, last_train, ends = training_examples(
        window_series(train_points, spec, grace_ms).windows, spec
    )
    if len(X) < 2:
        why = f"{len(X)} training examples: the input lacks the model's training period"
        return {"ridge": None, "ridge_examples": len(X), "ridge_note": why}
    val_from = (artifact.manifest.get("training") or {}).get("validation_from_ts")
    validation = ends >= val_from if val_from is not None else np.zeros(len(X), dtype=bool)
    ridge = fit_ridge_validated(X, y - last_train, validation)
    rows = {
        (w.device_id, w.row.window_end): w.row.vector
        for w in evaluation.view.windows
        if w.row is not None
    }
    vectors = np.asarray([rows[key] for key in evaluation.keys], dtype=np.float64)
    forecast = last + ridge.predict(vectors)
    return {"ridge": _mae(forecast, actual), "ridge_examples": len(X), "ridge_alpha": ridge.alpha}


def _mae(forecast: np.ndarray, actual: np.ndarray) -> float:
    return round(float(np.mean(np.abs(forecast - actual))), 6)
