"""The records the engine hands back to quixstreams to produce."""

from __future__ import annotations

from dataclasses import dataclass

from iotml.core import headers as h
from iotml.core.records import Alert, Prediction

PREDICTIONS, ALERTS, DLQ = "predictions", "alerts", "dlq"


@dataclass(frozen=True, slots=True)
class Output:
    """One record to produce: ``topic`` is a role (predictions, alerts, dlq)."""

    topic: str
    key: str | None
    value: bytes
    timestamp: int
    headers: list[tuple[str, bytes]]


def prediction_output(p: Prediction) -> Output:
    """A prediction, keyed by device, stamped at its window end."""
    hdrs = [(h.MODEL_VERSION, p.model_version.encode())]
    return Output(PREDICTIONS, p.device_id, p.to_json(), p.window_end, hdrs)


def alert_output(a: Alert) -> Output:
    """An alert event, keyed by device, stamped at its event time."""
    hdrs = [(h.MODEL_VERSION, a.model_version.encode())] if a.model_version else []
    return Output(ALERTS, a.device_id, a.to_json(), a.ts, hdrs)
