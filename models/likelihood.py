"""Anomaly likelihood: a forecast error as a tail probability against the device's own
recent errors, so one threshold means the same on every device and every metric.

A raw error threshold is in the metric's units and the same for a calm device and a noisy
one. Here each device keeps an exponential average and variance of its absolute forecast
errors (the long view) and the last few errors (the short view); the likelihood is the
probability, under a normal model of the long view, that the short view's mean is as
small as it is or smaller, i.e. ``1 - P(tail)``. Values near 1 say "these errors are
rarely seen on this device". Numenta's anomaly likelihood (used by NAB's HTM detectors)
works the same way on anomaly scores; this one works on forecast errors.

Until ``warmup`` errors have been seen, the likelihood is 0.5 (no opinion): a new device
cannot alert on its first errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorStats:
    """One device's error history: exponential mean and variance of absolute errors,
    how many were seen, and the most recent ones (newest last)."""

    mean: float = 0.0
    var: float = 0.0
    n: int = 0
    recent: tuple[float, ...] = ()

    def to_list(self) -> list[Any]:
        return [self.mean, self.var, self.n, list(self.recent)]

    @classmethod
    def from_list(cls, item: Sequence[Any] | None) -> ErrorStats:
        if not item or len(item) < 4:
            return cls()
        return cls(float(item[0]), float(item[1]), int(item[2]), tuple(map(float, item[3])))


@dataclass(frozen=True, slots=True)
class LikelihoodParams:
    """``rate``: weight of a new error in the long view (about 1/rate errors remembered);
    ``short``: errors averaged in the short view; ``warmup``: errors before an opinion."""

    rate: float = 0.01
    short: int = 3
    warmup: int = 30


def update(stats: ErrorStats, error: float, p: LikelihoodParams) -> ErrorStats:
    """``stats`` after one more forecast error. The long view learns from the error
    *before* it is judged, so a burst of large errors is judged against the calm before."""
    e = abs(error)
    if not math.isfinite(e):
        return stats
    recent = (*stats.recent, e)[-p.short :]
    if stats.n == 0:
        return ErrorStats(e, 0.0, 1, recent)
    # early on, an ordinary mean; later the exponential one
    rate = max(p.rate, 1.0 / (stats.n + 1))
    diff = e - stats.mean
    mean = stats.mean + rate * diff
    var = (1 - rate) * (stats.var + rate * diff * diff)
    return ErrorStats(mean, var, stats.n + 1, recent)


def likelihood(stats: ErrorStats, p: LikelihoodParams) -> float:
    """How unusual the recent errors are for this device, in [0, 1] (0.5 until warm)."""
    if stats.n < p.warmup or not stats.recent:
        return 0.5
    short = sum(stats.recent) / len(stats.recent)
    # Compared with the spread of single errors, not of a mean of them (as Numenta does):
    # errors are skewed and come in runs, and the stricter test keeps noise from alerting.
    # The floor keeps a device whose errors were all equal from calling any change certain.
    std = max(math.sqrt(stats.var), 1e-3 * max(stats.mean, 1e-9), 1e-12)
    z = (short - stats.mean) / std
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def score(stats: ErrorStats, error: float, p: LikelihoodParams) -> tuple[ErrorStats, float]:
    """Judge ``error`` against the history so far, then learn it: the likelihood of the
    recent errors including this one, against the long view without it."""
    judged = ErrorStats(stats.mean, stats.var, stats.n, (*stats.recent, abs(error))[-p.short :])
    return update(stats, error, p), likelihood(judged, p)


def log_likelihood(value: float) -> float:
    """Numenta's log scale, for thresholds that read well: 0.99999 -> 0.5, 1 -> 1."""
    return math.log(1.0000000001 - value) / math.log(1.0 - 0.9999999999)
