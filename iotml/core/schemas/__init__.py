"""The JSON Schemas of the records, for consumers in other languages (a test keeps them
in step with :mod:`iotml.core.records`)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema for ``reading``, ``prediction``, ``alert`` or ``dead_letter``."""
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return,unused-ignore]
