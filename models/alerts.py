"""The alert state machine, defined once (the processor and ``iotml evaluate`` run it).

Every alert type follows the same episode rule, evaluated at each closed window's end
``t`` (or at the processor's clock for ``device_silent``):

* while the condition holds, the episode *starts* at the first ``t`` where it held
  (``episode_start``); it **opens** once it has held for ``min_duration_ms``
  (``t - episode_start >= min_duration_ms``; ``0`` opens at once) and at least
  ``cooldown_ms`` has passed since this type last cleared for the device;
* an open episode is **cleared** at the first ``t`` where the condition no longer holds;
  a pending (not yet open) episode is simply forgotten;
* ``alert_id`` is derived from ``(device_id, type, episode_start)`` only, so replays,
  restarts and at-least-once duplicates repeat the same id.

Conditions (thresholds live in the artifact's :class:`AlertParams`):

* ``overheat_predicted``: forecast > ``overheat_threshold``;
* ``anomaly``: ``|actual - forecast made one horizon earlier| > residual_threshold``, in
  either direction (the actual is the last value of the window the forecast targeted);
* ``anomaly`` with ``anomaly_likelihood`` set: the error is judged against the device's
  own recent errors instead (:mod:`models.likelihood`), and the alert opens when that
  likelihood reaches the threshold (the same number means the same on every device);
* ``out_of_range``: the window mean < ``low_limit`` or > ``high_limit``;
* ``deviation``: the window mean is more than ``deviation_z`` spreads off the device's own
  band (:mod:`models.bands`), until it is back nearer the band than the jump it made;
* ``device_silent``: no reading for ``silence_ms`` of event time (driven by the processor).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from iotml.core.records import ALERT_TYPES, Alert


@dataclass(frozen=True, slots=True)
class AlertParams:
    """Thresholds and timing of the alert rule; stored in the artifact's manifest.

    A threshold of ``None`` disables that condition.
    """

    overheat_threshold: float | None = None
    residual_threshold: float | None = None
    low_limit: float | None = None
    high_limit: float | None = None
    min_duration_ms: int = 0
    cooldown_ms: int = 0
    silence_ms: int = 0  # 0 disables device_silent
    rule: str = "configured"  # how the thresholds were chosen (documentation only)
    # anomaly by likelihood (models.likelihood): replaces residual_threshold when set
    anomaly_likelihood: float | None = None
    likelihood_rate: float = 0.01
    likelihood_short: int = 2
    likelihood_warmup: int = 30
    # deviation from the device's own band (models.bands); None disables it
    deviation_z: float | None = None
    band_rate: float = 0.002  # how fast a band's level follows its device (learned)
    band_warmup: int = 20  # windows a device's band learns from before it is judged
    band_min_spread: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> AlertParams:
        known = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        return cls(**known)

    def with_overrides(self, **changes: Any) -> AlertParams:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(slots=True)
class EpisodeState:
    """One alert type's state for one device (plain data; see :meth:`to_dict`)."""

    episode_start: int | None = None  # condition holding since (pending or open)
    open: bool = False
    last_cleared: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode_start": self.episode_start,
            "open": self.open,
            "last_cleared": self.last_cleared,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> EpisodeState:
        return cls(
            episode_start=obj.get("episode_start"),
            open=bool(obj.get("open", False)),
            last_cleared=obj.get("last_cleared"),
        )


def alert_id(device_id: str, kind: str, episode_start: int) -> str:
    """Deterministic id of an episode."""
    digest = hashlib.sha256(f"{device_id}\x00{kind}\x00{episode_start}".encode()).hexdigest()
    return f"{kind}-{digest[:20]}"


@dataclass(frozen=True, slots=True)
class Check:
    """One evaluated condition: whether it holds, the value and threshold it compared."""

    kind: str
    holds: bool
    value: float | None = None
    threshold: float | None = None
    message: str = ""


def step_episode(
    state: EpisodeState,
    check: Check,
    t: int,
    device_id: str,
    params: AlertParams,
    model_version: str | None,
    tags: Mapping[str, str] | None = None,
) -> tuple[EpisodeState, Alert | None]:
    """Advance one type's episode at time ``t``; returns the new state and the event
    (carrying the device's ``tags``)."""
    if check.kind not in ALERT_TYPES:
        raise ValueError(f"unknown alert type {check.kind!r}")
    new = EpisodeState(state.episode_start, state.open, state.last_cleared)
    if check.holds:
        if new.episode_start is None:
            new.episode_start = t
        cooled = new.last_cleared is None or t - new.last_cleared >= params.cooldown_ms
        if not new.open and t - new.episode_start >= params.min_duration_ms and cooled:
            new.open = True
            event = _event(device_id, check, "open", t, new.episode_start, model_version, tags)
            return new, event
        return new, None
    if new.open:
        assert new.episode_start is not None
        start = new.episode_start
        new.open, new.episode_start, new.last_cleared = False, None, t
        return new, _event(device_id, check, "cleared", t, start, model_version, tags)
    new.episode_start = None
    return new, None


def _event(
    device_id: str,
    check: Check,
    event: str,
    t: int,
    start: int,
    model_version: str | None,
    tags: Mapping[str, str] | None,
) -> Alert:
    return Alert(
        alert_id=alert_id(device_id, check.kind, start),
        device_id=device_id,
        type=check.kind,
        event=event,
        ts=t,
        episode_start=start,
        value=check.value,
        threshold=check.threshold,
        model_version=model_version,
        message=check.message if event == "open" else f"{check.kind} cleared",
        tags=tags if tags is not None else {},
    )


def empty_episodes() -> dict[str, EpisodeState]:
    return {kind: EpisodeState() for kind in ALERT_TYPES}
