"""Routes: which MQTT topics go to which Kafka topic, under which key.

A route is written ``pattern[=kafka_topic[:key_template]]``:

* ``pattern`` is an MQTT topic with named segments, e.g. ``sensors/{site}/{device}/{metric}``.
  A segment is a literal, ``{name}`` (captures one level) or ``+`` (one level, not captured);
  the last segment may be ``#`` (any remaining levels). The MQTT subscription is the pattern
  with every ``{name}`` replaced by ``+``.
* ``kafka_topic`` may use the captured names (``readings-{site}``); it defaults to the
  readings topic (``IOTML_TOPIC_READINGS``).
* ``key_template`` (e.g. ``{site}.{device}``) defaults to ``{device}``; a pattern without
  ``{device}`` takes the device from the payload's ``device_id`` field, and so does the key.

Captured segments other than ``device`` and ``metric`` become the reading's ``tags``.
Routes are tried in order; the first match wins.

A topic that matches but cannot make a valid record raises
:class:`~iotml.core.errors.RecordError`: a ``{device}`` segment or a key built by a key
template that breaks the device-id contract (``bad_device_id``,
:func:`~iotml.core.records.check_device_id`), or a Kafka topic template that yields an
invalid topic name (``bad_kafka_topic``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bridge.errors import RouteError
from iotml.core.errors import RecordError
from iotml.core.identifiers import check_device_id

DEFAULT_ROUTE = "sensors/{site}/{device}/{metric}"

_NAME = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_KAFKA_TOPIC_CHARS = re.compile(r"^[A-Za-z0-9._\-{}]+$")
_KAFKA_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,249}$")
_KEY_LITERAL_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f+#/]")
_RESERVED = ("device", "metric")


@dataclass(frozen=True, slots=True)
class Route:
    """One parsed route."""

    pattern: str
    kafka_topic: str
    key_template: str | None
    segments: tuple[str | None, ...]  # a literal, a captured name as "{name}", or None for "+"
    multi_level: bool  # pattern ends in "#"
    names: tuple[str, ...]

    @property
    def mqtt_filter(self) -> str:
        """The MQTT subscription filter of this route."""
        parts = ["+" if s is None or _NAME.match(s) else s for s in self.segments]
        if self.multi_level:
            parts.append("#")
        return "/".join(parts)

    def match(self, topic: str) -> dict[str, str] | None:
        """The captured segments if ``topic`` matches, else ``None``."""
        levels = topic.split("/")
        n = len(self.segments)
        if len(levels) < n or (len(levels) > n and not self.multi_level):
            return None
        captured: dict[str, str] = {}
        for seg, level in zip(self.segments, levels, strict=False):
            if seg is None:
                continue
            m = _NAME.match(seg)
            if m:
                if not level:
                    return None  # an empty segment cannot name a device/site
                captured[m.group(1)] = level
            elif seg != level:
                return None
        return captured


@dataclass(frozen=True, slots=True)
class Target:
    """Where one MQTT topic goes: resolved once per topic and cached."""

    kafka_topic: str
    key: bytes | None  # None: taken from the payload's device_id
    device: str | None
    metric: str | None
    tags: Mapping[str, str] = field(default_factory=dict)


def _template_names(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError as exc:
        raise RouteError(f"bad template {template!r}: {exc}") from None


def _template_literal(template: str) -> str:
    return "".join(literal for literal, _, _, _ in string.Formatter().parse(template))


def parse_route(text: str, default_topic: str) -> Route:
    """Parse ``pattern[=kafka_topic[:key_template]]``; raises :class:`RouteError`."""
    text = text.strip()
    if "=" in text:
        pattern, _, target = text.rpartition("=")
        kafka_topic, _, key = target.partition(":")
    else:
        pattern, kafka_topic, key = text, "", ""
    pattern, kafka_topic, key = pattern.strip(), kafka_topic.strip(), key.strip()
    if not pattern:
        raise RouteError(f"route {text!r} has no MQTT pattern")
    kafka_topic = kafka_topic or default_topic
    levels = pattern.split("/")
    multi = levels[-1] == "#"
    if multi:
        levels = levels[:-1]
    segments: list[str | None] = []
    names: list[str] = []
    for level in levels:
        if level == "+":
            segments.append(None)
        elif _NAME.match(level):
            name = level[1:-1]
            if name in names:
                raise RouteError(f"route {text!r} names {{{name}}} twice")
            names.append(name)
            segments.append(level)
        elif any(c in level for c in "+#{}"):
            raise RouteError(
                f"route {text!r}: segment {level!r} must be a literal, {{name}}, + or a final #"
            )
        else:
            segments.append(level)
    if pattern.startswith("$share/"):
        raise RouteError(f"route {text!r}: set IOTML_MQTT_SHARE_GROUP instead of $share/ here")
    if not _KAFKA_TOPIC_CHARS.match(kafka_topic):
        raise RouteError(f"route {text!r}: Kafka topic {kafka_topic!r} has invalid characters")
    unknown = (_template_names(kafka_topic) | _template_names(key)) - set(names)
    if unknown:
        raise RouteError(
            f"route {text!r} uses {sorted(unknown)} which the pattern does not capture"
        )
    if key and _KEY_LITERAL_FORBIDDEN.search(_template_literal(key)):
        raise RouteError(
            f"route {text!r}: key template {key!r} must not contain '+', '#', '/' or control "
            "characters (the key is a device id)"
        )
    return Route(
        pattern=pattern,
        kafka_topic=kafka_topic,
        key_template=key or None,
        segments=tuple(segments),
        multi_level=multi,
        names=tuple(names),
    )


class RouteTable:
    """Routes in order, with a bounded cache from MQTT topic to :class:`Target`."""

    def __init__(self, routes: Iterable[Route], cache_size: int = 200_000) -> None:
        self.routes = tuple(routes)
        if not self.routes:
            raise RouteError("no routes configured")
        self._cache: dict[bytes, Target | RecordError | None] = {}
        self._cache_size = cache_size

    @classmethod
    def parse(cls, texts: Iterable[str], default_topic: str) -> RouteTable:
        return cls(parse_route(t, default_topic) for t in texts)

    @property
    def mqtt_filters(self) -> list[str]:
        return list(dict.fromkeys(r.mqtt_filter for r in self.routes))

    def resolve(self, topic: str) -> Target | None:
        """The target of ``topic``, or ``None`` when no route matches (dead letter).

        Raises :class:`RecordError` when the matching route cannot make a valid record of it
        (``bad_device_id``, ``bad_kafka_topic``).
        """
        for route in self.routes:
            captured = route.match(topic)
            if captured is None:
                continue
            device = captured.get("device")
            if device is not None:
                check_device_id(device, "topic segment {device}")
            if route.key_template is not None:
                key_text = route.key_template.format(**captured)
                check_device_id(key_text, f"key from template {route.key_template!a}")
                key: bytes | None = key_text.encode()
            else:
                key = device.encode() if device is not None else None
            kafka_topic = route.kafka_topic.format(**captured)
            if "{" in route.kafka_topic and (
                not _KAFKA_TOPIC_NAME.match(kafka_topic) or kafka_topic in (".", "..")
            ):
                raise RecordError(
                    "bad_kafka_topic",
                    f"Kafka topic {kafka_topic[:300]!a} from template {route.kafka_topic!a}",
                )
            return Target(
                kafka_topic=kafka_topic,
                key=key,
                device=device,
                metric=captured.get("metric"),
                tags={k: v for k, v in captured.items() if k not in _RESERVED},
            )
        return None

    def lookup(self, raw_topic: bytes) -> Target | None:
        """:meth:`resolve` for a raw (UTF-8) topic, cached (its errors too).

        Raises ``UnicodeDecodeError`` for a topic that is not UTF-8 and :class:`RecordError`
        as :meth:`resolve` does.
        """
        try:
            hit = self._cache[raw_topic]
        except KeyError:
            try:
                hit = self.resolve(raw_topic.decode())
            except RecordError as exc:
                hit = exc.with_traceback(None)  # keep no frames alive in the cache
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[raw_topic] = hit
        if isinstance(hit, RecordError):
            raise RecordError(hit.reason, hit.detail)  # a fresh one: no growing traceback
        return hit
