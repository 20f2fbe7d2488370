#!/usr/bin/env bash
# Reproduce the NAB figures of the models issue: train on the first 60% of the machine
# temperature file (window 30m, horizon 1h), evaluate on the rest with the labels.
#   bash bench/evaluate_nab.sh [NAB_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
NAB="${1:-../shared/data/nab}"
OUT="${2:-$(mktemp -d)}"
CSV="$NAB/data/realKnownCause/machine_temperature_system_failure.csv"
export IOTML_MODEL_REGISTRY="$OUT/registry" IOTML_MODEL_NAME=nab
iotml train --input "$CSV" --train-fraction 0.6 --window 30m --horizon 1h --seed 42
iotml evaluate --input "$CSV" --from train-end \
  --windows "$NAB/labels/combined_windows.json" --label-times "$NAB/labels/combined_labels.json" \
  --plot "$OUT/nab_evaluation.png"
echo "plot: $OUT/nab_evaluation.png"
