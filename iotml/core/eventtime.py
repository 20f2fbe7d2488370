"""The accepted event-time range, in one place.

A reading's event time must lie in ``[now - max_age, now + max_future]``:

* Kafka 4 rejects records stamped more than 1 h in the future
  (``log.message.timestamp.after.max.ms``), so ``max_future`` is kept below that;
* time-based retention deletes records whose timestamps are older than ``retention.ms``
  almost at once, so ``max_age`` defaults to the retention of ``readings`` (7 days).

Readings outside the range are dead-lettered with reason ``ts_too_old`` or
``ts_in_future``; dead-letter records carry the receive time as their Kafka timestamp.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

TOO_OLD = "ts_too_old"
IN_FUTURE = "ts_in_future"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class EventTimeRange:
    max_age_ms: int = 7 * 86_400_000
    max_future_ms: int = 10 * 60_000

    def check(self, ts_ms: int, now: int | None = None) -> str | None:
        """The reason code if ``ts_ms`` is outside the range, else ``None``."""
        now = now_ms() if now is None else now
        if ts_ms < now - self.max_age_ms:
            return TOO_OLD
        if ts_ms > now + self.max_future_ms:
            return IN_FUTURE
        return None
