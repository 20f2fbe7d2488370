"""The Numenta Anomaly Benchmark's score of one file's detections (NAB v1.1 rules).

Pure arithmetic on row indices, written from the rules stated in NAB's documentation:

* The first ``min(floor(0.15 * rows), 750)`` rows are the **probation** period: detections
  there are not scored (the detector may learn from them).
* A **window** is a labelled span of rows (both ends inclusive). Its earliest detection
  scores ``A_tp * sigma(p) / sigma(-1)`` with ``p = -(last - i + 1) / rows_in_window``:
  1 on the window's first row, falling towards 0 at its last. Later detections in the
  same window score nothing. A window without a detection scores ``-A_fn``.
* A detection outside every window scores ``A_fp * sigma(q)`` with
  ``q = |i - last row of the previous window| / (rows of that window - 1)``, a penalty
  that grows from about 0 just after a window to ``-A_fp``; before the first window it
  is ``-A_fp``.
* ``sigma(x) = 2 / (1 + e^(5x)) - 1``. A file's score is the plain sum (NAB's raw score,
  the ``Score`` column of its published results; no normalisation).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PROBATION_SHARE = 0.15
PROBATION_MAX_ROWS = 750


@dataclass(frozen=True, slots=True)
class Profile:
    """The weights of a NAB profile, as positive magnitudes."""

    tp: float
    fp: float
    fn: float


STANDARD = Profile(tp=1.0, fp=0.11, fn=1.0)


@dataclass(frozen=True, slots=True)
class Window:
    """A labelled anomaly window as row indices, both inclusive."""

    first: int
    last: int

    @property
    def rows(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class FileScore:
    score: float
    windows: int
    windows_detected: int
    false_positives: int  # scored detections outside every window
    true_positive_score: float
    false_positive_score: float
    missed_score: float


def probation_rows(rows: int) -> int:
    """How many leading rows of a file of ``rows`` rows are not scored."""
    return min(math.floor(PROBATION_SHARE * rows), PROBATION_MAX_ROWS)


def scaled_sigmoid(x: float) -> float:
    """NAB's ``sigma``: 1 far left of 0, 0 at 0, -1 far right."""
    if x > 50:  # e^(5x) overflows; the value is -1 to double precision long before
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def score_file(
    rows: int,
    windows: Sequence[Window],
    detections: Iterable[int],
    profile: Profile = STANDARD,
) -> FileScore:
    """The score of the detected rows (indices into the file, any order, repeats count
    once) of a file of ``rows`` rows with the labelled ``windows``."""
    ordered = sorted(windows, key=lambda w: w.first)
    for a, b in itertools.pairwise(ordered):
        if b.first <= a.last:
            raise ValueError(f"windows overlap: {a} and {b}")
    if any(w.first < 0 or w.last < w.first or w.last >= rows for w in ordered):
        raise ValueError(f"a window lies outside the file's {rows} rows: {ordered}")
    start = probation_rows(rows)
    scored = sorted({i for i in detections if start <= i < rows})
    lasts = [w.last for w in ordered]
    earliest: dict[int, int] = {}  # window position -> its earliest detected row
    fp_score, fps = 0.0, 0
    for i in scored:
        k = bisect.bisect_left(lasts, i)  # the first window ending at or after i
        if k < len(ordered) and ordered[k].first <= i:
            earliest.setdefault(k, i)
            continue
        fps += 1
        if k == 0:
            fp_score -= profile.fp
        else:
            prev = ordered[k - 1]
            q = abs(i - prev.last) / max(prev.rows - 1, 1)
            fp_score += profile.fp * scaled_sigmoid(q)
    tp_score = 0.0
    for k, i in earliest.items():
        w = ordered[k]
        p = -(w.last - i + 1) / w.rows
        tp_score += profile.tp * scaled_sigmoid(p) / scaled_sigmoid(-1.0)
    missed = -profile.fn * (len(ordered) - len(earliest))
    return FileScore(
        score=tp_score + fp_score + missed,
        windows=len(ordered),
        windows_detected=len(earliest),
        false_positives=fps,
        true_positive_score=tp_score,
        false_positive_score=fp_score,
        missed_score=missed,
    )


class RowIndex:
    """Maps times to rows of a file whose timestamps may step back (a clock change
    repeats an hour in NAB's machine file): "the first row at or after ``t``" is the
    first row in file order whose timestamp is ``>= t``."""

    def __init__(self, timestamps: Sequence[int]) -> None:
        self._highest = list(itertools.accumulate(timestamps, max))

    def __len__(self) -> int:
        return len(self._highest)

    def at_or_after(self, t: int) -> int | None:
        """The first row stamped at or after ``t``; ``None`` past the last row."""
        i = bisect.bisect_left(self._highest, t)
        return i if i < len(self._highest) else None

    def window(self, start: int, end: int) -> Window | None:
        """The rows of a labelled span ``[start, end]`` (inclusive); ``None`` if empty."""
        first = self.at_or_after(start)
        after = bisect.bisect_right(self._highest, end)  # first row stamped after ``end``
        if first is None or after - 1 < first:
            return None
        return Window(first, after - 1)
