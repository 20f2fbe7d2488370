"""MQTT topic templates such as ``iotml/{site}/{device}/alerts/{type}``.

A placeholder names a field of the record (``device``, plus ``type`` for alerts or
``metric`` for forecasts and evaluations) or, any other name, one of the record's tags.
Every value fills exactly one topic level: characters MQTT gives a meaning to (``/``,
``+``, ``#``) and control characters become ``_``, and a missing or empty tag becomes the
configured default, so a record can never publish on a wildcard or into another level.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["TopicTemplate", "level", "slug"]

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NOT_IN_LEVEL = re.compile("[/+#\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_IN_SLUG = re.compile(r"[^A-Za-z0-9_-]")


def level(value: str, default: str = "_") -> str:
    """``value`` as one MQTT topic level (``default`` when empty)."""
    return _NOT_IN_LEVEL.sub("_", value) if value else default


def slug(value: str) -> str:
    """``value`` in the characters Home Assistant accepts in a discovery topic's node and
    object ids (``[a-zA-Z0-9_-]``); a value that had to change gets a short hash of the
    original, so that ``a.b`` and ``a:b`` stay apart."""
    cleaned = _NOT_IN_SLUG.sub("_", value)
    if cleaned == value and value:
        return value
    return f"{cleaned}_{hashlib.sha1(value.encode()).hexdigest()[:8]}"


@dataclass(frozen=True, slots=True)
class TopicTemplate:
    """A parsed template: literal text between placeholders."""

    text: str
    parts: tuple[str, ...]  # literal, name, literal, name, ..., literal
    fields: frozenset[str]  # the placeholders that are record fields, not tags

    @classmethod
    def parse(cls, text: str, fields: Iterable[str], required: Iterable[str] = ()) -> TopicTemplate:
        """Check ``text`` and parse it; raises ``ValueError`` saying what is wrong."""
        fields = frozenset(fields)
        if not text:
            raise ValueError("a topic template must not be empty")
        if "+" in text or "#" in text:
            raise ValueError(f"{text!r}: a topic to publish on cannot contain + or #")
        if text.startswith("$"):
            raise ValueError(f"{text!r}: topics starting with $ belong to the broker")
        pieces = _PLACEHOLDER.split(text)
        literals, names = pieces[0::2], pieces[1::2]
        for literal in literals:
            if "{" in literal or "}" in literal:
                raise ValueError(f"{text!r}: unbalanced {{ or }}")
        for name in names:
            if not _NAME.match(name):
                raise ValueError(f"{text!r}: {{{name}}} is not a placeholder name")
        missing = [f"{{{r}}}" for r in required if r not in names]
        if missing:
            raise ValueError(
                f"{text!r} lacks {', '.join(missing)}: without it, different records would "
                "share one topic (and one retained message)"
            )
        return cls(text, tuple(pieces), fields)

    @property
    def names(self) -> tuple[str, ...]:
        return self.parts[1::2]

    def render(self, values: Mapping[str, str], tags: Mapping[str, str], default: str) -> str:
        """The topic for a record: ``values`` fill the record's fields, ``tags`` the rest
        (``default`` where the record has no such tag)."""
        out: list[str] = []
        for i, piece in enumerate(self.parts):
            if i % 2 == 0:
                out.append(piece)
            elif piece in self.fields:
                out.append(level(values[piece], default))
            else:
                out.append(level(tags.get(piece, ""), default))
        return "".join(out)
