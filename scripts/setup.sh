#!/usr/bin/env bash
# Installs what edgegen needs on a Debian/Ubuntu machine, each step only when
# it is missing: system packages (apt), a virtual environment in .venv, and
# edgegen with its Python dependencies. Safe to run again: a second run
# installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    gcc clang binutils make cmake         # host build of the generated C, firmware builds
    dataset-fashion-mnist                 # the default data set (IDX files)
    gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm   # Cortex-M
    gcc-riscv64-unknown-elf qemu-system-misc                     # RISC-V
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing system packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

python=""
for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        python=$candidate
        break
    fi
done
if [ -z "$python" ]; then
    echo "setup: Python 3.11 or newer is needed (apt-get install python3 python3-venv)" >&2
    exit 2
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $python"
    "$python" -m venv .venv
fi

# Reinstall only when the dependency list changed.
stamp=.venv/.edgegen-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing edgegen and its Python dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    # torch is pinned to the CPU build (an open range pulls a multi-GB CUDA build).
    .venv/bin/python -m pip install -q -e '.[test]'
    echo "$want" > "$stamp"
fi
