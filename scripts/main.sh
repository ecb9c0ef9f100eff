#!/usr/bin/env bash
# The main job, end to end: train LeNet-5 on Fashion-MNIST if no checkpoint
# is cached, quantize it to int8, generate C, build it on the host, verify it
# bit-exact against the golden model, print the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/edgegen deploy lenet5 --out out/lenet5 --force "$@"
