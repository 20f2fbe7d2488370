"""Hourly data trains without extra flags; too little data says what it found and what helps."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from models.errors import DataError
from models.features import FeatureSpec
from models.registry import Registry
from models.sizing import choose_min_count, readings_per_window
from models.training import MIN_EXAMPLES, TrainConfig, train

MIN = 60_000
HOUR = 60 * MIN


def series(step_ms: int, n: int, device: str = "d") -> list[tuple[str, int, float]]:
    return [(device, i * step_ms, 20.0 + (i % 24) * 0.5) for i in range(n)]


def test_min_count_follows_the_readings_per_window():
    assert choose_min_count(series(HOUR, 100), HOUR) == 1  # hourly readings, hourly windows
    assert choose_min_count(series(30 * MIN, 100), HOUR) == 1  # two per window
    assert choose_min_count(series(15 * MIN, 100), HOUR) == 2  # four
    assert choose_min_count(series(5 * MIN, 100), 30 * MIN) == 3  # six: the usual 3


def test_repeated_timestamps_count_once_per_window():
    points = [("d", 0, 1.0), ("d", 0, 2.0), ("d", 10, 3.0), ("e", 0, 4.0)]
    assert sorted(readings_per_window(points, HOUR)) == [1, 2]


def failure(points: list[tuple[str, int, float]], spec: FeatureSpec, tmp_path: Path) -> str:
    with pytest.raises(DataError) as caught:
        train(points, TrainConfig(spec=spec), Registry(tmp_path), "m", "test", lambda _: None)
    return str(caught.value)


def test_hourly_data_with_min_count_3_is_told_to_lower_min_count_not_shorten_the_window(
    tmp_path: Path,
):
    spec = FeatureSpec("temperature", HOUR, 4, 6 * HOUR, min_count=3)
    message = failure(series(HOUR, 24 * 14), spec, tmp_path)
    assert message.startswith(f"only 0 training examples (need {MIN_EXAMPLES}) from 336 readings")
    assert "median of 1 readings" in message and "0 of them usable (min_count 3)" in message
    assert "--min-count 1 or a longer --window" in message
    assert "shorter" not in message


def test_a_short_series_is_told_how_much_data_is_needed(tmp_path: Path):
    spec = FeatureSpec("temperature", HOUR, 4, 6 * HOUR, min_count=1)
    message = failure(series(HOUR, 20), spec, tmp_path)
    assert "19 windows of 1h holding a median of 1 readings, 19 of them usable" in message
    assert "more data (about 30h of readings at this --window)" in message
    assert "shorter --window" not in message  # one reading per window cannot be split


def test_a_short_but_dense_series_may_also_use_a_shorter_window(tmp_path: Path):
    spec = FeatureSpec("temperature", HOUR, 4, HOUR, min_count=3)
    message = failure(series(5 * MIN, 12 * 20), spec, tmp_path)
    assert "median of 12 readings" in message
    assert "or a shorter --window" in message


def test_gaps_that_break_the_runs_of_windows_ask_for_a_smaller_k(tmp_path: Path):
    spec = FeatureSpec("temperature", HOUR, 4, HOUR, min_count=1)
    every_other_hour = series(2 * HOUR, 200)
    message = failure(every_other_hour, spec, tmp_path)
    assert "0 with the 4 windows before them usable too" in message
    assert "use a smaller --k or a longer --window" in message


@pytest.mark.slow
def test_iotml_train_on_hourly_readings_with_a_1h_window_needs_no_other_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from models.cli import train as train_command

    monkeypatch.delenv("IOTML_MIN_COUNT", raising=False)
    csv = tmp_path / "hourly.csv"
    rows = [f"{i * HOUR},{20 + (i % 24) * 0.5 + (i % 7) * 0.1}\n" for i in range(24 * 21)]
    csv.write_text("timestamp,temperature\n" + "".join(rows))
    args = ["--input", str(csv), "--window", "1h", "--horizon", "6h", "--epochs", "2"]
    args += ["--model-registry", str(tmp_path / "models"), "--model-name", "hourly"]
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 0, result.output
    assert "min_count 1 (from the data" in result.stderr
    artifact = Registry(tmp_path / "models").load("hourly", result.stdout.strip())
    assert artifact.spec.min_count == 1


def test_a_held_out_period_that_covers_everything_says_how_much_there_was():
    from models.retrain import holdout_cut

    with pytest.raises(DataError) as caught:
        holdout_cut(series(HOUR, 3), "1d")
    assert str(caught.value) == (
        "the held-out period (1d) covers all 3 readings (a span of 2.0 h), leaving none to "
        "train on. Fix: a shorter --holdout or an earlier --start"
    )


def test_evaluating_data_that_gives_no_scored_forecast_says_what_it_found():
    from dataclasses import dataclass

    import numpy as np

    from models.alerts import AlertParams
    from models.evaluation import evaluate
    from models.registry import Artifact

    @dataclass
    class NoChange:
        def predict(self, X: np.ndarray) -> np.ndarray:
            return np.asarray(X, dtype=np.float64)[:, 0]

    spec = FeatureSpec("temperature", HOUR, 1, HOUR, min_count=1)
    model = Artifact("m", "v1", Path("."), {}, spec, AlertParams(), NoChange())
    with pytest.raises(DataError) as caught:
        evaluate(series(HOUR, 10), model, from_ms=20 * HOUR)
    message = str(caught.value)
    assert message.startswith("no forecast could be scored: 10 readings gave 9 windows and 8")
    assert "0 of them from 1970-01-01T20:00:00Z on" in message
    assert message.endswith("Fix: more data after --from, or an earlier --from")
