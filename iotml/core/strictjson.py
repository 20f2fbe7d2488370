"""A strict JSON decoder for untrusted bytes: every refusal is a
:class:`~iotml.core.errors.RecordError` with a specific reason, never another exception."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

from iotml.core.errors import RecordError

_fast_dumps: Callable[[Any], bytes] | None
_fast_loads: Callable[[bytes], Any] | None
try:  # (de)serialising is the per-record cost of every service; orjson is ~4x faster
    from orjson import dumps as _fast_dumps
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson comes with quixstreams, not the bridge image
    _fast_loads = None
    _fast_dumps = None

#: The deepest JSON nesting accepted; a reading (``{"metrics": {...}}``) is 2 deep.
MAX_DEPTH = 32
#: The largest record :func:`decode_json` reads by default (Kafka's default message limit).
MAX_RECORD_BYTES = 1 << 20

_DBL_MAX = sys.float_info.max


# -- JSON from untrusted bytes -------------------------------------------------------------
#
# orjson is strict (UTF-8, no NaN, no lone surrogate, depth <= 1024) and fast, but silent on
# duplicate keys and on nesting under 1024. When it refuses, the standard parser runs only to
# name the reason, and only once the nesting is known to be shallow: it recurses, and a deep
# document would end in RecursionError. Without orjson (the bridge image) the standard parser
# does all the work, under the same checks.


def _std_int(text: str) -> int:
    if len(text) < 16:
        return int(text)
    if len(text) > 310:  # a double holds no integer of more than 309 digits
        raise RecordError("number_out_of_range", f"an integer of {len(text)} characters")
    n = int(text)
    if n > _DBL_MAX or n < -_DBL_MAX:
        raise RecordError("number_out_of_range", f"integer {text[:20]}... is beyond a double")
    return n


def _std_float(text: str) -> float:
    f = float(text)
    if f in (math.inf, -math.inf):
        raise RecordError("number_out_of_range", f"{text[:40]} is beyond a double")
    return f


def _std_constant(name: str) -> float:
    raise RecordError("not_finite", f"{name} is not a finite number")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RecordError("duplicate_key", f"key {key[:64]!a} appears twice")
            seen.add(key)
    return obj


# The plain decoder leaves numbers to the C scanner (number hooks cost ~0.2 us a number);
# _count_keys spots a number beyond a double it let through and the checked decoder names it.
_std_decode_plain = json.JSONDecoder(parse_constant=_std_constant).decode
_std_decode = json.JSONDecoder(
    parse_int=_std_int, parse_float=_std_float, parse_constant=_std_constant
).decode
_std_decode_unique = json.JSONDecoder(
    parse_int=_std_int,
    parse_float=_std_float,
    parse_constant=_std_constant,
    object_pairs_hook=_unique_pairs,
).decode
_TOKEN = re.compile(r'\\.|["\[\]{}]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _too_deep() -> RecordError:
    return RecordError("too_deep", f"nested more than {MAX_DEPTH} deep")


def _scan_depth(text: str) -> None:
    """Raise ``too_deep`` when ``text`` nests deeper than MAX_DEPTH (brackets in strings do
    not count). Linear, and stops at the first level too many."""
    depth = 0
    in_string = False
    for m in _TOKEN.finditer(text):
        c = m.group()
        if c == '"':
            in_string = not in_string
        elif in_string or len(c) == 2:
            continue
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
        else:
            depth -= 1


def _check_depth(obj: Any) -> None:
    """Raise ``too_deep`` when a parsed value nests deeper than MAX_DEPTH."""
    if type(obj) is not dict and type(obj) is not list:
        return
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        o, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        for v in o.values() if type(o) is dict else o:
            if type(v) is dict or type(v) is list:
                stack.append((v, depth + 1))


def _lone_surrogate(obj: Any) -> str | None:
    """The first string of ``obj`` holding a lone surrogate, except a top-level
    ``device_id`` (which :func:`check_device_id` rejects with its own reason)."""
    stack = [obj]
    while stack:
        o = stack.pop()
        if type(o) is str:
            if _SURROGATE.search(o):
                return o
        elif type(o) is dict:
            for k, v in o.items():
                if _SURROGATE.search(k):
                    return k
                if not (o is obj and k == "device_id"):
                    stack.append(v)
        elif type(o) is list:
            stack.extend(o)
    return None


def _count_keys(obj: Any) -> int:
    """The keys of every object in a value the standard parser read, or -1 when it holds a
    number beyond a double (an integer, or a float literal made infinite: NaN and Infinity
    literals never get this far). One pass for both checks."""
    t = type(obj)
    keys = 0
    if t is dict:
        keys = len(obj)
        values: Iterable[Any] = obj.values()
    elif t is list:
        values = obj
    else:
        values = (obj,)
    for v in values:
        t = type(v)
        if t is float:
            if v - v != 0.0:
                return -1
        elif t is int:
            if v > _DBL_MAX or v < -_DBL_MAX:
                return -1
        elif t is dict or t is list:
            n = _count_keys(v)  # at most MAX_DEPTH deep
            if n < 0:
                return -1
            keys += n
    return keys


def _std_loads(raw: bytes) -> tuple[Any, int]:
    """The value in ``raw`` and the keys of all its objects, by the standard parser."""
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise RecordError(
            "invalid_utf8", f"byte 0x{raw[exc.start]:02x} at offset {exc.start}: {exc.reason}"
        ) from None
    if text.startswith("\ufeff"):
        raise RecordError("invalid_json", "starts with a byte order mark (BOM)")
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _scan_depth(text)
    try:
        try:
            obj = _std_decode_plain(text)
        except RecordError:
            raise
        except ValueError:
            obj = _std_decode(text)  # a number too long to convert, or the syntax error again
        keys = _count_keys(obj)
        if keys < 0:
            _std_decode(text)  # raises number_out_of_range, naming the literal
    except RecordError:
        raise
    except ValueError as exc:
        raise RecordError("invalid_json", str(exc)[:200]) from None
    except RecursionError:  # pragma: no cover - _scan_depth bounds the nesting first
        raise _too_deep() from None
    if "\\u" in text:
        bad = _lone_surrogate(obj)
        if bad is not None:
            raise RecordError("invalid_utf8", f"lone surrogate escape in {bad[:64]!a}")
    return obj, keys


def _refused(raw: bytes, message: str) -> Any:
    """The reason orjson refused ``raw``; or the value, if only a device id's surrogate."""
    if message.startswith("depth limit exceeded"):
        raise _too_deep()
    if message.startswith("number is infinity"):
        raise RecordError("number_out_of_range", f"a number beyond a double ({message[:160]})")
    obj, _ = _std_loads(raw)  # names NaN, invalid UTF-8, BOM, syntax...
    if "surrogate" in message:
        return obj  # only a device_id holds one: check_device_id names it
    raise RecordError("invalid_json", message[:200])  # pragma: no cover - parsers disagree


def _shallow_keys(obj: Any) -> int:
    """The keys of ``obj`` and of the objects directly in it: at most all its keys."""
    keys = 0
    if type(obj) is dict:
        keys = len(obj)
        for v in obj.values():
            if type(v) is dict:
                keys += len(v)
    return keys


def _check_unique_keys(raw: bytes, keys: int) -> None:
    """Raise ``duplicate_key`` when an object in ``raw`` names a key twice.

    ``keys`` is at most the number of distinct keys parsed from ``raw``; ``raw`` has at most
    as many keys as colons, and at most as many as colons right after a quote or
    whitespace. When either count equals ``keys`` no key repeats; otherwise (colons in
    strings, deeper objects) the standard parser checks every object.
    """
    if raw.count(b":") == keys:
        return
    after = raw.count(b'":') + raw.count(b" :") + raw.count(b"\n:")
    if after + raw.count(b"\t:") + raw.count(b"\r:") == keys:
        return
    try:
        _std_decode_unique(raw.decode())
    except RecordError:
        raise  # duplicate_key, or what a duplicate hid (a number beyond a double)
    except ValueError:  # pragma: no cover - raw was parsed once already
        pass


def decode_json(raw: bytes | str, max_bytes: int = MAX_RECORD_BYTES) -> Any:
    """The JSON value in untrusted ``raw``. Raises only :class:`RecordError`:

    ``oversize``, ``empty``, ``invalid_utf8`` (not UTF-8, or a string with a lone surrogate
    escape other than a top-level ``device_id``, left to :func:`check_device_id`),
    ``invalid_json``, ``too_deep`` (deeper than :data:`MAX_DEPTH`), ``duplicate_key``,
    ``number_out_of_range`` (beyond a double) or ``not_finite`` (NaN, Infinity).
    Integers come back as ``int``, other numbers as finite ``float``.
    """
    if isinstance(raw, str):
        try:
            raw = raw.encode()
        except UnicodeEncodeError as exc:
            raise RecordError("invalid_utf8", f"lone surrogate at index {exc.start}") from None
    if len(raw) > max_bytes:
        raise RecordError("oversize", f"{len(raw)} bytes > {max_bytes}")
    if not raw:
        raise RecordError("empty", "no bytes")
    if _fast_loads is None:
        obj, keys = _std_loads(raw)
    else:
        try:
            obj = _fast_loads(raw)
        except ValueError as exc:
            obj = _refused(raw, str(exc))
        else:
            if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
                _check_depth(obj)
        keys = _shallow_keys(obj)
    _check_unique_keys(raw, keys)
    return obj
