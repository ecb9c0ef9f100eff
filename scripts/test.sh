#!/usr/bin/env bash
# The whole test suite, after installing what it needs.
# EDGEGEN_REQUIRE_TOOLCHAINS=1 turns a missing cross compiler or QEMU into a
# failure instead of a skip (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
