"""The documented rule that learns alert thresholds from training/validation data.

* ``residual_threshold`` = ``residual_z`` x the robust standard deviation
  (1.4826 x median absolute deviation) of the forecast residuals on the **validation**
  part (a robust z-score cut, 4 by default);
* ``low_limit`` / ``high_limit`` = the ``range_quantile`` / ``1 - range_quantile`` quantiles
  of the training readings, widened on each side by ``range_margin`` x their distance;
* ``overheat_threshold`` = ``high_limit`` (a forecast beyond the normal range);
* ``min_duration_ms`` = ``min_duration_windows`` x window (default 2: the condition holds at
  three consecutive window closes), ``cooldown_ms`` = ``cooldown_windows`` x window;
  ``silence_ms`` as configured (0: off);
* ``deviation_z`` and ``band_rate`` (with ``deviation``): from each device's training
  window means, the rate at which its band's level best follows it and 3 x the 99.9th
  percentile of their distances from the band, at least 4 spreads
  (:func:`models.bands.learn_baselines`).

The defaults (z = 4, 2 windows) were chosen on the NAB training period only, with
``bench/tune_nab_alerts.py``: among the rules detecting both labelled failures there, the
fewest false alerts while keeping one grid step of margin from the rules that miss them.

Any threshold given explicitly (``iotml train --alert-...``) overrides the learned value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models.alerts import AlertParams
from models.bands import Baselines
from models.features import FeatureSpec


@dataclass(frozen=True, slots=True)
class AlertRule:
    residual_z: float = 4.0
    range_quantile: float = 0.001
    range_margin: float = 0.1
    min_duration_windows: int = 2
    cooldown_windows: int = 24
    silence_ms: int = 0
    deviation: bool = True  # learn deviation_z from the devices' own bands (models.bands)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def learn_alert_params(
    values: np.ndarray,
    val_residuals: np.ndarray,
    val_forecasts: np.ndarray,
    spec: FeatureSpec,
    rule: AlertRule,
    overrides: Mapping[str, Any] | None = None,
    bands: Baselines | None = None,
) -> AlertParams:
    """Alert parameters from training readings and validation residuals (see module doc)."""
    del val_forecasts  # part of the signature for rules that need them
    centred = val_residuals - np.median(val_residuals)
    sigma = 1.4826 * float(np.median(np.abs(centred))) or float(np.std(val_residuals)) or 1.0
    lo, hi = np.quantile(values, [rule.range_quantile, 1.0 - rule.range_quantile])
    margin = rule.range_margin * float(hi - lo)
    params = AlertParams(
        overheat_threshold=round(float(hi) + margin, 6),
        residual_threshold=round(rule.residual_z * sigma, 6),
        low_limit=round(float(lo) - margin, 6),
        high_limit=round(float(hi) + margin, 6),
        min_duration_ms=rule.min_duration_windows * spec.window_ms,
        cooldown_ms=rule.cooldown_windows * spec.window_ms,
        silence_ms=rule.silence_ms,
        rule="learned: " + ", ".join(f"{k}={v}" for k, v in rule.to_dict().items()),
    )
    if rule.deviation and bands is not None:
        params = params.with_overrides(deviation_z=round(bands.z, 3), band_rate=bands.rate)
    return params.with_overrides(**dict(overrides or {}))
