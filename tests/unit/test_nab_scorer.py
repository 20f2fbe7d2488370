"""NAB's standard profile (models/nab.py): the published rules, on made-up and real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.nab import RowIndex, Window, probation_rows, scaled_sigmoid, score_file
from models.nab_data import load_file, read_anchor_scores, read_windows
from tests.shared_data import need_shared

#: 1,000 rows: probation 150; windows at rows 300..399 and 700..799.
ROWS = 1000
WINDOWS = [Window(300, 399), Window(700, 799)]


def score(*rows: int) -> float:
    return score_file(ROWS, WINDOWS, rows).score


def test_the_probation_period_is_15_percent_capped_at_750_rows():
    assert probation_rows(1000) == 150
    assert probation_rows(2381) == 357
    assert probation_rows(22695) == 750


def test_the_scaled_sigmoid_runs_from_1_through_0_to_minus_1():
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == pytest.approx(-1.0, abs=1e-6)
    assert scaled_sigmoid(1e6) == -1.0


def test_no_detection_costs_one_per_window():
    result = score_file(ROWS, WINDOWS, [])
    assert result.score == -2.0
    assert (result.windows, result.windows_detected, result.false_positives) == (2, 0, 0)


def test_a_detection_on_a_windows_first_row_scores_one():
    assert score(300, 700) == pytest.approx(2.0)
    assert score(300) == pytest.approx(0.0)  # one found, one missed


def test_a_later_detection_in_a_window_scores_less():
    assert 0 < score(399, 700) - 1 < score(350, 700) - 1 < 1
    last_row = scaled_sigmoid(-1 / 100) / scaled_sigmoid(-1.0)
    assert score(399) == pytest.approx(last_row - 1)


def test_only_the_earliest_detection_in_a_window_counts():
    assert score(320, 330, 398) == pytest.approx(score(320))
    result = score_file(ROWS, WINDOWS, [320, 330, 398, 320])
    assert result.windows_detected == 1 and result.false_positives == 0


def test_detections_in_the_probation_period_are_not_scored():
    assert score(0, 149) == -2.0
    assert score(150) == pytest.approx(-2.11)


def test_a_false_positive_before_the_first_window_costs_the_full_weight():
    result = score_file(ROWS, WINDOWS, [200])
    assert result.score == pytest.approx(-2.0 - 0.11)
    assert result.false_positives == 1


def test_a_false_positive_costs_more_the_further_it_is_after_a_window():
    just_after, later, far = score(400) + 2, score(450) + 2, score(650) + 2
    assert -0.11 < far < later < just_after < 0
    assert just_after == pytest.approx(0.11 * scaled_sigmoid(1 / 99))
    assert far == pytest.approx(0.11 * scaled_sigmoid(250 / 99))
    assert score(900) + 2 == pytest.approx(0.11 * scaled_sigmoid(101 / 99))  # after window 2


def test_detections_past_the_last_row_are_ignored():
    assert score(ROWS, ROWS + 5) == -2.0


def test_overlapping_windows_and_windows_outside_the_file_are_refused():
    with pytest.raises(ValueError, match="overlap"):
        score_file(ROWS, [Window(300, 400), Window(400, 500)], [])
    with pytest.raises(ValueError, match="outside"):
        score_file(ROWS, [Window(900, 1000)], [])


def test_times_map_to_the_first_row_at_or_after_them_even_when_the_clock_steps_back():
    index = RowIndex([0, 10, 20, 30, 5, 15, 40])  # rows 4-5 repeat earlier times
    assert index.at_or_after(10) == 1
    assert index.at_or_after(11) == 2
    assert index.at_or_after(31) == 6
    assert index.at_or_after(41) is None
    assert index.window(10, 30) == Window(1, 5)
    assert index.window(11, 19) is None


def test_a_nab_file_and_its_windows_are_read_as_row_spans(tmp_path: Path):
    (tmp_path / "d").mkdir()
    minutes = [f"2014-01-01 00:{m:02d}:00,{m}.5\n" for m in range(0, 60, 5)]
    (tmp_path / "d/f.csv").write_text("timestamp,value\n" + "".join(minutes))
    spans = {"d/f.csv": [["2014-01-01 00:20:00.000000", "2014-01-01 00:30:00.000000"]]}
    (tmp_path / "w.json").write_text(json.dumps(spans))
    nab = load_file(tmp_path, read_windows(tmp_path / "w.json"), "d/f.csv")
    assert nab.rows == 12 and nab.values[1] == 5.5
    assert nab.windows == [Window(4, 6)]


# The real files: NAB's published results for them are the reference.


@pytest.fixture
def nab_dir() -> Path:
    return need_shared("data/nab")


def real_files(nab: Path) -> list:
    windows = read_windows(nab / "labels/combined_windows.json")
    null = read_anchor_scores(nab / "anchor_scores_standard.csv")["null"]
    return [(load_file(nab / "data", windows, key), null[key]) for key in sorted(null)]


def test_no_detections_give_every_files_published_null_score(nab_dir: Path):
    files = real_files(nab_dir)
    assert len(files) == 8
    for nab, null in files:
        assert score_file(nab.rows, nab.windows, []).score == pytest.approx(null, abs=5e-4)


def test_one_detection_on_each_windows_first_row_scores_the_number_of_windows(nab_dir: Path):
    for nab, null in real_files(nab_dir):
        result = score_file(nab.rows, nab.windows, [w.first for w in nab.windows])
        assert result.score == pytest.approx(-null, abs=0.01)
        assert result.windows_detected == result.windows == len(nab.windows)


def test_every_real_window_lies_after_the_probation_period(nab_dir: Path):
    for nab, _ in real_files(nab_dir):
        assert all(w.first >= probation_rows(nab.rows) for w in nab.windows), nab.key
