"""Choose the alert rule's constants on the NAB *training* period only.

Trains on the first 60% of the file (as bench/evaluate_nab.py), then replays the training
period with each candidate rule and scores the two labelled failures that fall in it and
the false alerts there. Prints the grid; the evaluation period is never touched.

    python bench/tune_nab_alerts.py [path/to/machine_temperature_system_failure.csv]
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAB = REPO.parent / "shared" / "data" / "nab"


def main() -> None:
    from iotml.core.logs import quiet_tensorflow

    quiet_tensorflow()  # the one place that decides TensorFlow's log level
    import numpy as np

    from models.evaluation import evaluate, load_labels
    from models.features import FeatureSpec
    from models.registry import Registry
    from models.sources import read_csv
    from models.training import TrainConfig, train

    csv = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else NAB / "data/realKnownCause/machine_temperature_system_failure.csv"
    )
    labels_dir = csv.parents[2] / "labels"
    points = read_csv(csv, "temperature", "machine-1")
    t0, t1 = points[0][1], max(p[1] for p in points)
    cut = t0 + int(0.6 * (t1 - t0))
    train_points = [p for p in points if p[1] < cut]
    labels = load_labels(
        labels_dir / "combined_windows.json", labels_dir / "combined_labels.json", None, str(csv)
    )
    spec = FeatureSpec("temperature", 1_800_000, 4, 3_600_000, 3)
    with tempfile.TemporaryDirectory() as tmp:
        reg = Registry(tmp)
        version = train(
            train_points, TrainConfig(spec=spec), reg, "nab", str(csv), progress=lambda _: None
        ).version
        artifact = reg.load("nab", version)
        base = evaluate(
            train_points, artifact, labels, int(artifact.manifest["training"]["validation_from_ts"])
        )
        res = np.asarray([f - a for _, f, a, _ in base.scored])
        sigma = 1.4826 * float(np.median(np.abs(res - np.median(res))))
        print(f"validation residual robust sigma {sigma:.3f}")
        print("z    min_dur  detected(lead h)               false/week (training period)")
        for z in (3.0, 3.5, 4.0, 4.5, 5.0, 5.5):
            for md in (0, 1, 2, 3):
                params = dataclasses.replace(
                    artifact.alert_params,
                    residual_threshold=z * sigma,
                    min_duration_ms=md * spec.window_ms,
                )
                rep = evaluate(
                    train_points, dataclasses.replace(artifact, alert_params=params), labels
                ).report
                det = [(d["detected"], d["lead_time_h"]) for d in rep["labelled_windows"]]
                print(f"{z:<4} {md:<8} {det!s:<30} {rep['false_alerts_per_week']}")


if __name__ == "__main__":
    main()
