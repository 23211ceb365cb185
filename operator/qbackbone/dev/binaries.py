"""Where the control-plane binaries built by ``hack/build-k8s.sh`` live."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Keep in step with the defaults of hack/build-k8s.sh (the cache key is built the same way).
K8S_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KUBECTL_LAYER_VERSION = "2.2.2"
CACHE_KEY = f"{K8S_VERSION}_etcd-{ETCD_VERSION}_layer-{KUBECTL_LAYER_VERSION}"

REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


class BinariesMissing(RuntimeError):
    """The control-plane binaries are not built (run ``hack/build-k8s.sh``)."""


def cache_root() -> Path:
    """The project's cache directory (``$QB_CACHE_DIR`` or ``~/.cache/qbackbone``)."""
    env = os.environ.get("QB_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "qbackbone"


def default_bin_dir() -> Path:
    """The bin directory ``hack/build-k8s.sh`` fills for the pinned versions."""
    return cache_root() / "k8s" / CACHE_KEY / "bin"


def find_bin_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the directory holding all control-plane binaries.

    Looks at ``explicit``, then ``$QB_K8S_BIN_DIR``, then the default cache path; raises
    ``BinariesMissing`` naming what is absent.
    """
    chosen = explicit or os.environ.get("QB_K8S_BIN_DIR") or default_bin_dir()
    bin_dir = Path(chosen)
    missing = [name for name in REQUIRED if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise BinariesMissing(
            f"control-plane binaries missing in {bin_dir}: {', '.join(missing)}; "
            "build them with hack/build-k8s.sh (needs Go) and/or set QB_K8S_BIN_DIR"
        )
    return bin_dir


HACK = Path(__file__).resolve().parents[3] / "hack"  # in a checkout; absent from a wheel


def build_with(script: str) -> Path:
    """Run the checkout's ``hack/<script>`` (it builds what is missing and caches it; its
    progress goes to stderr) and return the bin directory it prints last. BinariesMissing
    when there is no checkout with that script, or the build fails."""
    path = HACK / script
    if not path.is_file():
        raise BinariesMissing(f"{script} is not here (no source checkout): build the binaries "
                              "from one, or set QB_K8S_BIN_DIR / QB_NODE_BIN_DIR")
    print(f"building with hack/{script} (cached after the first time)", file=sys.stderr)
    done = subprocess.run([str(path)], stdout=subprocess.PIPE, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BinariesMissing(f"hack/{script} failed with exit code {done.returncode}")
    return Path(lines[-1])
