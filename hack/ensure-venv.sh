#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs the project with its dev extras, once per
# change of pyproject.toml or of the compiled scheduler engine's sources (operator/native, built
# by the install with cargo when it is on PATH). pip's own cache (~/.cache/pip) makes repeated
# installs fast.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
export PATH="$PATH:$HOME/.cargo/bin"  # rustup's cargo, where a login shell would find it
stamp=.venv/.installed-$(cat pyproject.toml operator/native/Cargo.* operator/native/src/*.rs |
    sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    [ -x .venv/bin/python ] || "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
