"""Human durations ("500ms", "10s", "30m", "1h", "7d") as integer milliseconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration_ms(value: object) -> int:
    """Parse ``value`` into milliseconds; a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return int(value * 1000)
    if not isinstance(value, str):
        raise ValueError(f"not a duration: {value!r}")
    match = _PATTERN.match(value)
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 10s, 30m, 1h, 7d)")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit or "s"])


def format_duration_ms(ms: int) -> str:
    """The shortest exact spelling of ``ms`` ("30m" rather than "1800000ms")."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def duration_ms_field(value: object) -> int:
    """Validator of duration settings: an ``int`` is already milliseconds (defaults, code);
    text is parsed with :func:`parse_duration_ms` (a bare number there means seconds)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return parse_duration_ms(value)
