"""The ``model-events`` record: something happened to a model as a whole, not to a device.

Today one type, ``model_degraded``: the live skill (1 - MAE / persistence MAE over the
drift period, from the ``evaluations`` topic) of the running version stayed below its
validation skill minus a margin for a whole period (``open``), or stayed back above it for
a whole period (``cleared``). One consumer decides (``iotml retrain --on-drift``), so
processor replicas never emit conflicting events. Key = model name.

``event_id`` is deterministic per episode (model name, type, episode start), so a consumer
that sees an event twice de-duplicates on ``(event_id, event)``; the episode may open
under one version and clear under the next.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from iotml.core.errors import RecordError
from iotml.core.records import (
    SCHEMA_VERSION,
    _dumps,
    _epoch_ms,
    _finite,
    _identifier,
    _loads,
    _version,
)

MODEL_EVENT_TYPES: tuple[str, ...] = ("model_degraded",)


def model_event_id(model_name: str, kind: str, episode_start: int) -> str:
    """Deterministic id of a model episode."""
    digest = hashlib.sha256(f"{model_name}\x00{kind}\x00{episode_start}".encode()).hexdigest()
    return f"{kind}-{digest[:20]}"


@dataclass(frozen=True, slots=True)
class ModelEvent:
    """An episode event of a model (topic ``model-events``)."""

    event_id: str
    model_name: str
    model_version: str  # the version whose live skill decided this event
    type: str
    event: str  # "open" | "cleared"
    ts: int  # event time of the decision (the latest scored target time), epoch ms
    episode_start: int  # event time since which the condition held
    live_skill: float  # over the period ending at ts
    validation_skill: float  # of model_version, from its manifest
    margin: float
    window_ms: int  # the sliding period the live skill is computed over
    scored: int  # forecasts in that period
    detail: str = ""
    v: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "event_id": self.event_id,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "type": self.type,
            "event": self.event,
            "ts": self.ts,
            "episode_start": self.episode_start,
            "live_skill": self.live_skill,
            "validation_skill": self.validation_skill,
            "margin": self.margin,
            "window_ms": self.window_ms,
            "scored": self.scored,
            "detail": self.detail,
        }

    def to_json(self) -> bytes:
        return _dumps(self.to_dict(), (self.live_skill, self.validation_skill, self.margin))

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> ModelEvent:
        _version(obj)
        kind = obj.get("type")
        if kind not in MODEL_EVENT_TYPES:
            raise RecordError("wrong_type", f"unknown model event type {kind!r:.40}")
        event = obj.get("event")
        if event not in ("open", "cleared"):
            raise RecordError("wrong_type", f"unknown model event {event!r:.40}")
        scored = obj.get("scored")
        if type(scored) is not int or scored < 0:
            raise RecordError("wrong_type", "scored must be a non-negative integer")
        return cls(
            event_id=_identifier("event_id", obj.get("event_id")),
            model_name=_identifier("model_name", obj.get("model_name")),
            model_version=_identifier("model_version", obj.get("model_version")),
            type=kind,
            event=event,
            ts=_epoch_ms("ts", obj.get("ts")),
            episode_start=_epoch_ms("episode_start", obj.get("episode_start")),
            live_skill=_finite("live_skill", obj.get("live_skill")),
            validation_skill=_finite("validation_skill", obj.get("validation_skill")),
            margin=_finite("margin", obj.get("margin")),
            window_ms=_epoch_ms("window_ms", obj.get("window_ms")),
            scored=scored,
            detail=str(obj.get("detail", "")),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> ModelEvent:
        return cls.from_dict(_loads(raw))
