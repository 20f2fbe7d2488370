"""Checked fields of the records (:mod:`iotml.core.records`): numbers, epoch times,
identifiers and the JSON they travel in, each refused with a :class:`RecordError` reason."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from iotml.core.errors import RecordError
from iotml.core.identifiers import MAX_ID_LENGTH, check_metric_name
from iotml.core.strictjson import _fast_dumps, decode_json

SCHEMA_VERSION = 1

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _dumps(obj: dict[str, Any], numbers: Iterable[float | None] = ()) -> bytes:
    """Compact JSON. NaN and infinities are refused (they are not JSON): orjson would
    write them as null, so ``numbers`` — every float of the record — is checked first."""
    if _fast_dumps is None:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    for x in numbers:
        if x is not None and not math.isfinite(x):
            raise ValueError(f"Out of range float values are not JSON compliant: {x}")
    return _fast_dumps(obj)


def _loads(raw: bytes | str) -> dict[str, Any]:
    obj = decode_json(raw)
    if type(obj) is not dict:
        raise RecordError("wrong_type", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError("wrong_type", f"{name} must be a number, got {type(value).__name__}")
    try:
        f = float(value)
    except OverflowError:
        raise RecordError(
            "number_out_of_range", f"{name} is beyond the range of a double"
        ) from None
    if not math.isfinite(f):
        raise RecordError("not_finite", f"{name} is {f}")
    return f


def _metric_values(metrics: dict[Any, Any]) -> dict[str, float]:
    """Checked names and finite values; the common case (a short printable name, a finite
    float) costs no call."""
    clean: dict[str, float] = {}
    for k, v in metrics.items():
        if not (type(k) is str and 0 < len(k) <= MAX_ID_LENGTH and k.isprintable()):
            check_metric_name(k)
        clean[k] = v if type(v) is float and math.isfinite(v) else _finite(f"metrics.{k!a:.70}", v)
    return clean


def _identifier(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise RecordError("wrong_type", f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise RecordError("wrong_type", f"{name} longer than {MAX_ID_LENGTH} characters")
    return value


def _epoch_ms(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float):
            if not math.isfinite(value):
                raise RecordError("not_finite", f"{name} is {value}")
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise RecordError("number_out_of_range", f"{name} {value} is beyond int64")
        raise RecordError("wrong_type", f"{name} must be an integer (epoch ms UTC)")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise RecordError("number_out_of_range", f"{name} is beyond int64")
    return value


def _version(obj: Mapping[str, Any]) -> None:
    v = obj.get("v")
    if type(v) is not int or v != SCHEMA_VERSION:
        raise RecordError("unsupported_version", f"v={v!r:.40}, expected {SCHEMA_VERSION}")
