"""The identifier contracts: device ids (safe as Kafka keys and MQTT topic levels) and
metric names. One definition, used by the bridge, the processor and the records."""

from __future__ import annotations

import re

from iotml.core.errors import RecordError

MAX_ID_LENGTH = 256
#: A device id is at most this many UTF-8 bytes (see :func:`check_device_id`).
MAX_DEVICE_ID_BYTES = 128

# C0, DEL, C1 and (lone) surrogates; a str holds a surrogate only when it is unpaired.
_CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_DEVICE_ID_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff+#/]")
_DEVICE_ID_CHARS = {
    "+": "'+' (an MQTT wildcard)",
    "#": "'#' (an MQTT wildcard)",
    "/": "'/' (the MQTT topic level separator)",
}


def _char_rule(what: str, char: str, index: int) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return f"{what} has a lone surrogate U+{code:04X} at index {index}"
    if char in _DEVICE_ID_CHARS:
        return f"{what} has {_DEVICE_ID_CHARS[char]} at index {index}"
    return f"{what} has control character U+{code:04X} at index {index}"


def check_device_id(value: object, what: str = "device_id") -> str:
    """``value`` if it is a valid device id; else :class:`RecordError` ``bad_device_id``
    (``wrong_type`` when it is not a string) with a detail naming the rule broken.

    A device id is 1-128 UTF-8 bytes with no control character (C0, DEL, C1), no lone
    surrogate and no ``+``, ``#`` or ``/``: it is the Kafka key of its records and a level
    of MQTT topics. ``what`` names the source in the detail.
    """
    if not isinstance(value, str):
        raise RecordError("wrong_type", f"{what} must be a string, got {type(value).__name__}")
    n = len(value)
    bad = _DEVICE_ID_FORBIDDEN.search(value)
    if bad is None and 0 < n <= MAX_DEVICE_ID_BYTES // 4:  # 4 bytes a character at most
        return value
    if n == 0:
        raise RecordError("bad_device_id", f"{what} is empty")
    if bad is not None:
        raise RecordError("bad_device_id", _char_rule(what, bad.group(), bad.start()))
    size = n if value.isascii() else len(value.encode())
    if size > MAX_DEVICE_ID_BYTES:
        raise RecordError(
            "bad_device_id", f"{what} is {size} UTF-8 bytes, more than {MAX_DEVICE_ID_BYTES}"
        )
    return value


def check_metric_name(value: object, what: str = "metric name") -> str:
    """``value`` if it is a valid metric name; else :class:`RecordError` ``bad_metric_name``
    (``wrong_type`` when it is not a string): 1-256 characters, no control character and no
    lone surrogate."""
    if not isinstance(value, str):
        raise RecordError("wrong_type", f"{what} must be a string, got {type(value).__name__}")
    if 0 < len(value) <= MAX_ID_LENGTH and (
        value.isprintable() or _CONTROL_OR_SURROGATE.search(value) is None
    ):
        return value
    if not value:
        raise RecordError("bad_metric_name", f"{what} is empty")
    bad = _CONTROL_OR_SURROGATE.search(value)
    if bad is not None:
        raise RecordError("bad_metric_name", _char_rule(what, bad.group(), bad.start()))
    raise RecordError(
        "bad_metric_name", f"{what} is {len(value)} characters, more than {MAX_ID_LENGTH}"
    )
