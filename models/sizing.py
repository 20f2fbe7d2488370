"""How many readings a window needs, and what to say when the data is too thin to train.

``min_count`` (the readings a window needs to be usable) defaults to 3, which suits a
sensor that reports many times per window. Where the data's typical window holds fewer
(hourly readings in hourly windows), a fixed 3 would make every window unusable, so the
default follows the data: half the median readings per window, rounded up, at most 3.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

from iotml.core.durations import format_duration_ms
from models.closing import ClosedWindow
from models.features import FeatureSpec

DEFAULT_MIN_COUNT = 3


def readings_per_window(points: Iterable[tuple[str, int, float]], window_ms: int) -> list[int]:
    """Distinct timestamps per device per tumbling window that holds any (the windower
    keeps one reading per timestamp)."""
    seen: dict[tuple[str, int], set[int]] = {}
    for device, ts, _ in points:
        seen.setdefault((device, ts - ts % window_ms), set()).add(ts)
    return [len(stamps) for stamps in seen.values()]


def choose_min_count(points: Iterable[tuple[str, int, float]], window_ms: int) -> int:
    """The ``min_count`` for data not given one: half the median readings per window,
    rounded up, between 1 and :data:`DEFAULT_MIN_COUNT`, so a typical window is usable."""
    counts = readings_per_window(points, window_ms)
    if not counts:
        return DEFAULT_MIN_COUNT
    half = math.ceil(statistics.median(counts) / 2)
    return max(1, min(DEFAULT_MIN_COUNT, half))


def too_little_data(
    windows: Sequence[ClosedWindow], spec: FeatureSpec, readings: int, examples: int, need: int
) -> str:
    """Why ``readings`` gave only ``examples`` training examples (``need`` wanted) and
    what would give more: what was found, then the remedy for the narrowest step."""
    counts = [w.stats.count for w in windows]
    median = statistics.median(counts) if counts else 0
    usable = sum(c >= spec.min_count for c in counts)
    rows = sum(w.row is not None for w in windows)
    window = format_duration_ms(spec.window_ms)
    found = (
        f"only {examples} training examples (need {need}) from {readings} readings: "
        f"{len(windows)} windows of {window} holding a median of {median:g} readings, "
        f"{usable} of them usable (min_count {spec.min_count}), {rows} with the "
        f"{spec.k} windows before them usable too"
    )
    if usable < len(windows) / 2:
        fix = (
            f"most windows hold fewer than min_count readings: use --min-count "
            f"{max(1, math.floor(median))} or a longer --window"
        )
    elif rows < usable / 2:
        fix = (
            f"gaps break the runs of {spec.k + 1} consecutive usable windows a forecast "
            f"needs: use a smaller --k or a longer --window"
        )
        if spec.min_count > 1:
            fix += " (or a smaller --min-count: sparse windows are gaps too)"
    else:
        # Each example needs its own window, the k before it and its target window.
        span = (need + spec.k + spec.horizon_ms // spec.window_ms) * spec.window_ms
        fix = f"more data (about {format_duration_ms(span)} of readings at this --window)"
        if median >= 2 * spec.min_count:
            fix += ", or a shorter --window (its windows hold enough readings to split)"
    return f"{found}. Fix: {fix}"
