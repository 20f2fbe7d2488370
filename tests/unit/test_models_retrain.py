"""Champion and challenger: a challenger is promoted only when it is better on the same
held-out period, and every decision is recorded in the registry with its reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from iotml.core.fleet import Fault, SyntheticFleet, history
from models.cli import models_group
from models.evaluation import parse_time
from models.registry import Registry
from models.retrain import RetrainConfig, Score, decide, holdout_cut, retrain
from tests.model_fixtures import train_tiny_artifact

START = 1_700_000_000_000
CHANGE_S, AFTER_S = 1200, 900  # 20 min of one regime, then 15 min of another
Points = list[tuple[str, int, float]]


@pytest.fixture(scope="module")
def fleet_points() -> tuple[Points, Points]:
    """(before, after) the fleet's dynamics change (the simulator's regime fault)."""
    fleet = SyntheticFleet(
        8, step_ms=1000, start_ms=START, faults=[Fault("*", "regime", CHANGE_S * 1000)], seed=1
    )
    points = [(s.device_id, s.ts, s.value) for s in history(fleet, CHANGE_S + AFTER_S, START)]
    cut = START + CHANGE_S * 1000
    return [p for p in points if p[1] < cut], [p for p in points if p[1] >= cut]


@pytest.fixture(scope="module")
def champion_registry(tmp_path_factory: pytest.TempPathFactory, fleet_points) -> Path:
    root = tmp_path_factory.mktemp("champion")
    train_tiny_artifact(root, name="m", points=fleet_points[0], epochs=10)
    return root


@pytest.fixture
def registry(tmp_path: Path, champion_registry: Path) -> Registry:
    shutil.copytree(champion_registry, tmp_path / "registry")
    return Registry(tmp_path / "registry")


FAST = RetrainConfig(epochs=30, patience=5)


def score(version: str, mae: float, alerts: int = 0) -> Score:
    return Score(version, mae, persistence_mae=1.0, n=100, alerts=alerts, device_days=10.0)


# -- the rule ---------------------------------------------------------------------------


def test_a_challenger_better_by_the_margin_with_no_more_alerts_wins():
    promoted, reason = decide(score("v1", 1.0, alerts=3), score("v2", 0.9, alerts=3), 0.02)
    assert promoted and "10.0% better" in reason and "0.300 vs 0.300 alerts" in reason


def test_a_challenger_better_by_less_than_the_margin_loses():
    promoted, reason = decide(score("v1", 1.0), score("v2", 0.99), 0.02)
    assert not promoted and "+1.0% better, needs 2.0%" in reason


def test_a_worse_challenger_loses():
    promoted, reason = decide(score("v1", 1.0), score("v2", 1.2), 0.02)
    assert not promoted and "-20.0% better" in reason


def test_a_more_accurate_challenger_that_opens_more_alerts_loses():
    promoted, reason = decide(score("v1", 1.0, alerts=1), score("v2", 0.5, alerts=2), 0.02)
    assert not promoted and "opens more alerts" in reason


def test_the_holdout_is_a_share_or_a_duration_of_the_most_recent_data():
    points = [("d", t * 1000, 0.0) for t in range(101)]
    assert holdout_cut(points, "25%") == 75_000
    assert holdout_cut(points, "10s") == 90_000


def test_start_and_end_accept_an_age_before_now():
    now = 100 * 86_400_000
    assert parse_time("14d", now) == now - 14 * 86_400_000
    assert parse_time("90m", now) == now - 90 * 60_000
    assert parse_time("now", now) == now
    assert parse_time("1700000000000", now) == 1_700_000_000_000  # digits stay epoch ms
    assert parse_time("2023-11-14T22:13:20Z", now) == 1_700_000_000_000


# -- the decision, end to end on a fleet whose dynamics changed --------------------------


def test_a_challenger_trained_after_the_change_is_promoted(registry, fleet_points):
    record = retrain(registry, "m", lambda metric: fleet_points[1], FAST, "fleet")
    assert record["promoted"], record["reason"]
    assert registry.latest("m") == record["challenger"]["version"] == "v0002"
    assert record["challenger"]["mae"] < record["champion"]["mae"] * 0.98
    assert record["data"]["readings"] == len(fleet_points[1])
    assert record["data"]["train_readings"] + record["data"]["holdout_readings"] == len(
        fleet_points[1]
    )
    [saved] = registry.decisions("m")
    assert saved["reason"] == record["reason"] and saved["promoted"] is True


def test_a_challenger_trained_on_too_little_data_is_not_promoted(registry, fleet_points):
    too_long = RetrainConfig(epochs=30, patience=5, holdout="14m")  # 1 min left to train on
    record = retrain(registry, "m", lambda metric: fleet_points[1], too_long, "fleet")
    assert not record["promoted"]
    assert "challenger could not be trained: only" in record["reason"]
    assert "training examples" in record["reason"]
    assert record["champion"]["version"] == "v0001" and record["champion"]["n"] > 0
    assert registry.latest("m") == "v0001"
    assert registry.decisions("m")[0]["reason"] == record["reason"]


def test_a_challenger_of_another_metric_is_not_promoted(registry, fleet_points):
    other = RetrainConfig(epochs=30, patience=5, metric="humidity")
    record = retrain(registry, "m", lambda metric: fleet_points[1], other, "fleet")
    assert not record["promoted"]
    assert "cannot replace v0001 live: metric differs (temperature -> humidity)" in record["reason"]
    assert registry.latest("m") == "v0001"


def test_a_metric_without_readings_is_a_decision_not_a_crash(registry, fleet_points):
    from models.errors import DataError

    def load(metric: str) -> Points:
        if metric != "temperature":
            raise DataError(f"no readings of metric {metric!r} in fleet")
        return fleet_points[1]

    record = retrain(registry, "m", load, RetrainConfig(metric="pressure"), "fleet")
    assert not record["promoted"]
    assert record["reason"].endswith(
        "could not be trained: no readings of metric 'pressure' in fleet"
    )


def test_without_a_champion_nothing_is_promoted(tmp_path: Path, fleet_points):
    record = retrain(Registry(tmp_path), "m", lambda metric: fleet_points[1], FAST, "fleet")
    assert not record["promoted"] and record["reason"].startswith("no champion")
    assert Registry(tmp_path).decisions("m")[0]["reason"] == record["reason"]


def test_models_show_lists_the_latest_decisions_newest_first(registry, fleet_points):
    registry.record_decision("m", {"promoted": False, "reason": "first"})
    registry.record_decision("m", {"promoted": False, "reason": "second"})
    result = CliRunner().invoke(
        models_group,
        ["show", "--model-registry", str(registry.root), "--model-name", "m", "--decisions", "1"],
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert [d["reason"] for d in shown["decisions"]] == ["second"]
    assert shown["manifest"]["version"] == shown["latest"] == "v0001"
    assert shown["validation_skill"] == pytest.approx(shown["manifest"]["validation"]["val_skill"])
