"""What live scoring costs: the processor with ``IOTML_LIVE_SCORING`` on and off, through
Kafka (``bench_processor.py --scoring-compare``), and the engine alone in this process."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from benchkit import readings
from processor_runs import run_processors


class MemoryState:
    """quixstreams' ``State`` for the in-process engine: values kept as JSON, as its
    RocksDB store keeps them."""

    def __init__(self) -> None:
        self.data: dict[Any, str] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        raw = self.data.get(key)
        return default if raw is None else json.loads(raw)

    def set(self, key: Any, value: Any) -> None:
        self.data[key] = json.dumps(value)

    def delete(self, key: Any) -> None:
        self.data.pop(key, None)


def engine_scoring_cost(registry: Path, devices: int, seconds: int, runs: int = 3) -> None:
    """Live scoring in the engine alone (this process, no Kafka): CPU per reading with
    scoring on and off, alternating, on the same readings; prints the medians."""
    from processor.core import EVALUATIONS, Engine
    from processor.metrics import Metrics
    from processor.model import ModelHolder

    model = ModelHolder(registry, "bench", Metrics()).poll()
    assert model is not None
    records = list(readings(devices, seconds))
    cpu: dict[bool, list[float]] = {True: [], False: []}
    scored = 0
    for _ in range(runs):
        for on in (True, False):
            engine = Engine(lambda: model, Metrics(), scoring=on)
            state = MemoryState()
            n = 0
            t0 = time.process_time()
            for offset, (_, ts, body) in enumerate(records):
                out = engine.process(body, None, ts, "readings", 0, offset, state)
                n += sum(1 for o in out if o.topic == EVALUATIONS)
            cpu[on].append(time.process_time() - t0)
            scored = max(scored, n)
    if not scored:
        raise SystemExit("engine alone: nothing was scored (readings dead-lettered?)")
    with_, without = (statistics.median(cpu[on]) / len(records) * 1e6 for on in (True, False))
    window = (with_ - without) * len(records) / scored
    print(
        f"engine alone (no Kafka, {len(records)} readings, {scored} scored): {with_:.1f} µs "
        f"CPU per reading on, {without:.1f} off; live scoring {window:.1f} µs per scored "
        f"window = {window / without:.1%} of the per-reading cost "
        f"({(with_ - without) / without:+.1%} per reading)"
    )


def scoring_compare(env: dict[str, str], total: int, work: Path, runs: int = 3) -> None:
    """Live scoring on and off, alternating, ``runs`` times each; prints the medians."""
    got: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for i in range(runs):
        for on in (True, False):
            steady: dict[str, float] = {}
            run_env = {**env, "IOTML_LIVE_SCORING": "true" if on else "false"}
            rate, _ = run_processors(1, "model", run_env, total, work, steady=steady)
            steady["rate"] = rate
            got[on].append(steady)
            per = steady["cpu"] / steady["records"] * 1e6
            print(
                f"run {i + 1} scoring {'on ' if on else 'off'}: {rate:8.0f} readings/s, "
                f"{per:.1f} µs CPU per reading, {steady['scored']:.0f} forecasts scored",
                flush=True,
            )

    def median(on: bool, what: str) -> float:
        return statistics.median(r[what] for r in got[on])

    def per_reading(on: bool, what: str) -> float:  # µs
        return statistics.median(r[what] / r["records"] for r in got[on]) * 1e6

    scored_per_reading = statistics.median(r["scored"] / r["records"] for r in got[True])
    print()
    print(f"live scoring, median of {runs} alternating runs each:")
    print(f"scoring on:   {median(True, 'rate'):10.0f} readings/s")
    print(
        f"scoring off:  {median(False, 'rate'):10.0f} readings/s  "
        f"(on = {median(True, 'rate') / median(False, 'rate'):.1%} of off)"
    )
    print(f"scored windows per reading: {scored_per_reading:.3f}")
    for what, label in (("cpu", "CPU"), ("wall", "wall")):
        with_, without = per_reading(True, what), per_reading(False, what)
        extra = with_ - without
        window = extra / scored_per_reading if scored_per_reading else float("nan")
        print(
            f"{label:4}: {with_:.1f} µs per reading on, {without:.1f} off; live scoring "
            f"{window:.1f} µs per scored window = {window / without:.1%} of the per-reading "
            f"cost ({extra / without:+.1%} per reading)"
        )
