"""The per-device conditions that need memory: ``anomaly`` by likelihood, ``deviation``
from the device's own band.

Both run once per closed window, inside :func:`models.pipeline.step_alerts`, so the
stream and every replay judge a device the same way; both keep what they learn in the
device state (:class:`models.likelihood.ErrorStats`, :class:`models.bands.Baseline`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from models.alerts import AlertParams, Check
from models.bands import SPREAD_RATE, Baseline, adapt, learning, shifted, spread_floor
from models.likelihood import ErrorStats, LikelihoodParams, log_likelihood
from models.likelihood import score as judge


def anomaly(
    errors: ErrorStats, actual: float, earlier: float | None, params: AlertParams
) -> tuple[ErrorStats, Check, float | None]:
    """The ``anomaly`` check for a window whose actual is ``actual`` and whose forecast,
    made one horizon earlier, was ``earlier``. With ``params.anomaly_likelihood`` set, the
    error is judged as a tail probability against the device's own recent errors (the
    likelihood is returned, to be carried on predictions); otherwise against the fixed
    ``residual_threshold``."""
    if earlier is None or not math.isfinite(earlier):
        return errors, Check("anomaly", False), None
    residual = actual - earlier
    text = f"actual {actual:.3f} vs forecast {earlier:.3f} (residual {residual:+.3f})"
    if params.anomaly_likelihood is None:
        if params.residual_threshold is None:
            return errors, Check("anomaly", False), None
        holds = abs(residual) > params.residual_threshold
        return errors, Check("anomaly", holds, actual, params.residual_threshold, text), None
    p = LikelihoodParams(params.likelihood_rate, params.likelihood_short, params.likelihood_warmup)
    errors, value = judge(errors, residual, p)
    threshold = params.anomaly_likelihood
    check = Check(
        "anomaly",
        value >= threshold,
        value,
        threshold,
        f"{text}: likelihood {value:.6f} (log {log_likelihood(value):.3f})",
    )
    return errors, check, value


def deviation(
    band: Baseline | None, is_open: bool, mean: float, params: AlertParams
) -> tuple[Baseline | None, Check]:
    """The ``deviation`` check for a window of mean ``mean``: off the device's band by
    more than ``deviation_z`` spreads. Once off, the band holds the jump and follows the
    device without it (:func:`models.bands.shifted`), and the condition holds until the
    device is back nearer its band than the jump: within half of ``deviation_z`` spreads
    or half the jump, whichever is wider (so a level hovering at the threshold does not
    flap, and a jump misjudged by a window's worth of motion still clears when the fault
    ends). Only windows on the band teach it, so a fault is never learned as normal."""
    z = params.deviation_z
    if z is None or not math.isfinite(mean):
        return band, Check("deviation", False)
    rate = params.band_rate
    if band is None or band.n < params.band_warmup:
        return learning(band, mean, params.band_min_spread, rate), Check("deviation", False)
    d = band.deviation(mean)
    off = bool(band.shift) or is_open
    limit = max(z / 2, abs(band.shift) / (2 * band.spread)) if off else z
    holds = abs(d) > limit
    expected = band.level
    if holds:
        band = shifted(band, mean, rate)
    else:
        floor = spread_floor(mean, params.band_min_spread)
        band = adapt(replace(band, shift=0.0), mean, rate, floor, SPREAD_RATE)
    text = (
        f"mean {mean:.3f} is {d:+.1f} spreads from the {expected:.3f} expected of this "
        f"device (spread {band.spread:.3f})"
    )
    return band, Check("deviation", holds, mean, z, text)
