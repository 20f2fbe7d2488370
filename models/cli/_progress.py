"""The progress display of a long ``iotml batch --engine local`` replay, on stderr.

On a terminal one line is redrawn in place, at most once per ``interval`` (1 s):

    replay [########------------]  41%  820,000/2,000,000 readings  48,210/s  eta 24s  partition 1 (2/4): 320,000/500,000

Anywhere else (a log file, CI, a pipe) nothing is redrawn: a plain line every
``plain_interval`` (30 s) and, if there was one, a last line when the replay ends, so a
short replay stays quiet and the summary on stdout stays the only output.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

BAR = 20


class ReplayProgress:
    """``progress(partition, done)`` for :func:`models.batch.replay_view`; ``sizes`` are
    the readings per Kafka partition, replayed in partition order."""

    def __init__(
        self,
        sizes: Mapping[int, int],
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float = 1.0,
        plain_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._tty = _isatty(self._stream) if tty is None else tty
        self._every = interval if self._tty else plain_interval
        self._clock = clock
        self._order = sorted(sizes)
        self._sizes = dict(sizes)
        self._total = sum(sizes.values())
        self._before = 0  # readings of the partitions finished so far
        self._current: int | None = None
        self._done = 0  # of the current partition
        self._started = clock()
        self._drawn: float | None = None  # when the last line was drawn
        self._printed = False

    def __call__(self, partition: int, done: int) -> None:
        if partition != self._current:
            if self._current is not None:
                self._before += self._sizes.get(self._current, self._done)
            self._current = partition
        self._done = done
        now = self._clock()
        if now - (self._drawn if self._drawn is not None else self._started) >= self._every:
            self._draw(now)

    def note(self, text: str) -> None:
        """A line of its own on a terminal (e.g. while the input loads); nothing elsewhere."""
        if self._tty:
            self._stream.write(f"{text}\n")
            self._stream.flush()

    def close(self) -> None:
        """The last line: on a terminal always, elsewhere only after periodic lines."""
        if not self._tty and not self._printed:
            return
        elapsed = self._clock() - self._started
        done = self._before + self._done
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"replay: {done:,} readings in {elapsed:.1f}s ({rate:,.0f}/s)"
        self._stream.write(f"\r{text}\x1b[K\n" if self._tty else f"{text}\n")
        self._stream.flush()

    def line(self, now: float) -> str:
        """The progress line at ``now`` (the bar only on a terminal)."""
        done = self._before + self._done
        elapsed = max(now - self._started, 1e-9)
        rate = done / elapsed
        share = done / self._total if self._total else 1.0
        parts = ["replay"]
        if self._tty:
            filled = min(BAR, int(share * BAR))
            parts.append("[" + "#" * filled + "-" * (BAR - filled) + "]")
        parts += [f"{share:4.0%}", f"{done:,}/{self._total:,} readings", f"{rate:,.0f}/s"]
        if rate > 0 and done < self._total:
            parts.append(f"eta {_duration((self._total - done) / rate)}")
        k = self._current
        if k is not None:
            index = self._order.index(k) + 1 if k in self._sizes else 0
            of = f"{index}/{len(self._order)}"
            parts.append(f"partition {k} ({of}): {self._done:,}/{self._sizes.get(k, 0):,}")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        text = self.line(now)
        self._stream.write(f"\r{text}\x1b[K" if self._tty else f"{text}\n")
        self._stream.flush()
        self._drawn, self._printed = now, True


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed stream
        return False


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
