"""iotml as a NAB detector (models/nab_replay.py): settings from the probation rows, a
model trained on them, alerts replayed into scored detections."""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

import pytest

from models.nab import Window, probation_rows
from models.nab_data import NabFile
from models.nab_replay import Settings, probation_rate, run_file, spec_for

MIN = 60_000
T0 = 1_400_000_000_000 - 1_400_000_000_000 % (30 * MIN)


MODEL = Settings(detector="model", window_intervals=6, horizon_windows=2)


def test_the_window_is_a_number_of_sampling_intervals_and_min_count_follows_the_data():
    five_minutes = [T0 + i * 5 * MIN for i in range(300)]
    spec = spec_for(five_minutes, MODEL)
    assert (spec.window_ms, spec.horizon_ms, spec.k, spec.min_count) == (30 * MIN, 60 * MIN, 4, 3)
    ten_minutes_with_gaps = [T0 + i * 10 * MIN for i in range(300) if i % 3]
    spec = spec_for(ten_minutes_with_gaps, MODEL)
    assert spec.window_ms == 60 * MIN and spec.min_count == 2
    assert spec_for(five_minutes, Settings()).window_ms == 5 * MIN  # the default: one interval


def machine(rows: int, fault_from: int, fault_rows: int) -> NabFile:
    """A 5-minute series with a daily cycle that drops by 30 for ``fault_rows`` rows."""
    rng = random.Random(1)
    stamps = [T0 + i * 5 * MIN for i in range(rows)]
    values = [
        60
        + 5 * math.sin(2 * math.pi * i / 288)
        + rng.gauss(0, 0.3)
        - (30 if fault_from <= i < fault_from + fault_rows else 0)
        for i in range(rows)
    ]
    window = Window(fault_from - 50, fault_from + fault_rows - 50)
    return NabFile("synthetic/machine.csv", stamps, values, [window])


@pytest.mark.slow
def test_a_level_drop_inside_the_labelled_window_is_detected_early(tmp_path: Path):
    nab = machine(rows=3000, fault_from=2000, fault_rows=300)
    run = run_file(nab, dataclasses.replace(MODEL, epochs=20), tmp_path)
    assert run.version is not None and run.why_no_model is None
    assert run.result.windows_detected == 1
    assert run.result.true_positive_score > 0.5  # within the first part of the window
    assert all(i >= 0 for i in run.detections)
    assert run.alerts  # the types that opened, counted


@pytest.mark.slow
def test_a_file_too_short_to_train_on_scores_as_the_null_detector(tmp_path: Path):
    nab = machine(rows=200, fault_from=150, fault_rows=20)
    assert probation_rows(nab.rows) == 30
    run = run_file(nab, dataclasses.replace(MODEL, epochs=2), tmp_path)
    assert run.version is None and run.why_no_model is not None
    assert "training examples" in run.why_no_model
    assert run.result.score == -1.0 and run.detections == []


def test_the_statistical_baseline_detects_a_level_drop_from_the_first_rows(tmp_path: Path):
    nab = machine(rows=3000, fault_from=2000, fault_rows=300)
    run = run_file(nab, Settings(), tmp_path)
    assert run.version == "persistence"
    assert run.result.windows_detected == 1
    assert run.result.true_positive_score > 0.5
    # the jump opens an anomaly; the level it stays at, one deviation for the whole drop
    assert set(run.alerts) == {"anomaly", "deviation"} and run.alerts["deviation"] == 1
    anomaly_only = run_file(nab, Settings(deviation_z=None), tmp_path)
    assert anomaly_only.alerts == {"anomaly": run.alerts["anomaly"]}


def test_the_bands_rate_follows_how_the_probation_rows_move():
    smooth = [("nab", T0 + i * 5 * MIN, 50 + 10 * math.sin(i / 50)) for i in range(300)]
    noise = [("nab", ts, 50 + random.Random(ts).gauss(0, 1)) for _, ts, _ in smooth]
    assert probation_rate(smooth, 5 * MIN) >= 0.5
    assert probation_rate(noise, 5 * MIN) <= 0.05


def test_a_file_too_short_to_train_on_still_gets_detections_from_the_baseline(tmp_path: Path):
    nab = machine(rows=400, fault_from=300, fault_rows=80)
    run = run_file(nab, Settings(likelihood_warmup=20), tmp_path)
    assert run.result.windows_detected == 1
