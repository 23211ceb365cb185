#!/usr/bin/env bash
# Builds the image the Dockerfile describes without Docker (issue 16): a Python 3.11 base from
# Debian bookworm (debootstrap), the project's wheel and its dependencies installed as the
# Dockerfile's final stage does, packed as an OCI archive that `ctr images import` takes, and
# imported into the dev cluster's real node when one runs. See operator/qbackbone/dev/image.py.
#
# Cached by content under ${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/image (base, dependencies and
# project layers keyed separately): an unchanged tree only hashes. Needs root, overlayfs and
# debootstrap (installed with apt-get when missing). The last line on stdout is the archive:
#   archive="$(hack/build-image.sh | tail -n1)"
# Options go to `qbackbone dev image` (e.g. --record benchmarks/results/image-build.json,
# --import yes|no, --refresh, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
hack/ensure-venv.sh
if ! command -v debootstrap >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "build-image: installing debootstrap" >&2
        apt-get install -y -q debootstrap >&2 || { apt-get update -q >&2 &&
            apt-get install -y -q debootstrap >&2; }
    else
        echo "build-image: debootstrap is missing (apt-get install debootstrap)" >&2
    fi
fi
exec .venv/bin/python -m qbackbone.dev.image "$@"
