"""The stream processor: readings -> per-device windows -> forecasts and alerts.

See :mod:`processor.core` for the windowing and state design and
:mod:`processor.heartbeat` for how quiet partitions keep their clock moving.
"""

from processor.core import Engine, Output
from processor.model import ActiveModel, ModelHolder
from processor.settings import ProcessorSettings

__all__ = ["ActiveModel", "Engine", "ModelHolder", "Output", "ProcessorSettings"]
