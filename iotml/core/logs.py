"""Logging set-up, called from each command's ``main`` (never at import)."""

from __future__ import annotations

import logging
import os
import sys


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter (oneDNN notes, absl warnings); an explicit
    setting in the environment still wins. oneDNN's custom ops are off because they only
    speed up large matrices (ours are tiny) and make results vary with the CPU."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def setup_logging(level: str = "INFO") -> None:
    quiet_tensorflow()
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # librdkafka and TensorFlow are chatty at INFO.
    for noisy in ("quixstreams", "tensorflow", "absl"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
