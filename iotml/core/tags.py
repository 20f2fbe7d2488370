"""The tags predictions, alerts and evaluations carry: their device's latest reading's, bounded.

A reading's ``tags`` (the bridge makes every MQTT topic segment other than device and
metric a tag, e.g. ``site``) are bounded only by the payload size; the processor keeps the
latest ones in each device's state and copies them into every output, so what is carried
is bounded here, once for the stream, the batch path and the records' validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from iotml.core.errors import RecordError
from iotml.core.identifiers import MAX_ID_LENGTH

__all__ = ["MAX_TAGS", "MAX_TAG_LENGTH", "carried_tags", "checked_tags"]

#: The tags a prediction, alert or evaluation carries, at most (see :func:`carried_tags`).
MAX_TAGS = 16
#: The longest tag name or value carried, in characters.
MAX_TAG_LENGTH = MAX_ID_LENGTH


def carried_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a device's outputs carry from its reading's ``tags``: names of 1 to
    :data:`MAX_TAG_LENGTH` characters with values of at most as many, and of those the
    first :data:`MAX_TAGS` by name; any other tag is left out."""
    if len(tags) <= MAX_TAGS and all(_fits(k, v) for k, v in tags.items()):
        return dict(tags)
    return dict(sorted((k, v) for k, v in tags.items() if _fits(k, v))[:MAX_TAGS])


def _fits(name: str, value: str) -> bool:
    return 0 < len(name) <= MAX_TAG_LENGTH and len(value) <= MAX_TAG_LENGTH


def checked_tags(obj: Mapping[str, Any]) -> dict[str, str]:
    """The checked ``tags`` of an output record (none when absent: older records); raises
    :class:`RecordError` (``wrong_type``, or ``oversize`` beyond :func:`carried_tags`'
    bounds)."""
    tags = obj.get("tags")
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise RecordError("wrong_type", "tags must map strings to strings")
    if len(tags) > MAX_TAGS or not all(_fits(k, v) for k, v in tags.items()):
        raise RecordError(
            "oversize",
            f"tags: at most {MAX_TAGS}, names of 1-{MAX_TAG_LENGTH} characters, values of "
            f"at most {MAX_TAG_LENGTH}",
        )
    return tags
