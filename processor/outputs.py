"""The records the engine hands back to quixstreams to produce."""

from __future__ import annotations

from dataclasses import dataclass

from iotml.core import headers as h
from iotml.core.evaluations import Evaluation
from iotml.core.records import Alert, Prediction

PREDICTIONS, ALERTS, ALERT_STATE, DLQ = "predictions", "alerts", "alert-state", "dlq"
EVALUATIONS = "evaluations"


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


def evaluation_output(e: Evaluation) -> Output:
    """A scored forecast, keyed by device, stamped at its target time."""
    return Output(EVALUATIONS, e.device_id, e.to_json(), e.target_ts, [])


def alert_outputs(a: Alert) -> tuple[Output, Output]:
    """An alert event, keyed by device, stamped at its event time; and the same event as
    the latest state of its device and type (compacted topic, key ``<device>/<type>``:
    device ids never contain ``/``)."""
    hdrs = [(h.MODEL_VERSION, a.model_version.encode())] if a.model_version else []
    value = a.to_json()
    return (
        Output(ALERTS, a.device_id, value, a.ts, hdrs),
        Output(ALERT_STATE, f"{a.device_id}/{a.type}", value, a.ts, hdrs),
    )
