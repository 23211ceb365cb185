#!/usr/bin/env bash
# The project's test command (README, step 2); .ci/run runs exactly this.
# Installs what it needs: the venv (hack/ensure-venv.sh) and, where Go is present, the
# Kubernetes control plane for the cluster tier (hack/build-k8s.sh), Prometheus
# (hack/build-prometheus.sh), kueue (hack/build-kueue.sh) and, as root, the real node
# (hack/build-node.sh) and the project's image (hack/build-image.sh), all cached under
# ~/.cache/qbackbone. Then lint,
# type-check, and the test tiers.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== python environment" >&2
hack/ensure-venv.sh
if command -v cargo >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/cargo" ]; then
    # the install built the compiled scheduler engine: its tests must run, not skip
    export QB_REQUIRE_NATIVE=1
fi

if command -v go >/dev/null 2>&1; then
    echo "== kubernetes control plane (built once, then cached)" >&2
    QB_K8S_BIN_DIR=$(hack/build-k8s.sh | tail -n 1)
    export QB_K8S_BIN_DIR
    echo "== prometheus (built once, then cached)" >&2
    QB_PROMETHEUS_BIN_DIR=$(hack/build-prometheus.sh | tail -n 1)
    export QB_PROMETHEUS_BIN_DIR
    echo "== kueue (built once, then cached)" >&2
    QB_KUEUE_BIN_DIR=$(hack/build-kueue.sh | tail -n 1)
    export QB_KUEUE_BIN_DIR
    # With the binaries at hand, a skipped cluster test is a failure, not a pass.
    export QB_REQUIRE_CLUSTER=1
    if [ "$(id -u)" = 0 ]; then
        # A real node (kubelet, kube-proxy, containerd, runc; apt packages it needs): its
        # tests and the chart installed on it must then run, not skip.
        echo "== real node (built once, then cached)" >&2
        QB_NODE_BIN_DIR=$(hack/build-node.sh | tail -n 1)
        export QB_NODE_BIN_DIR QB_REQUIRE_REAL_NODE=1
        echo "== the project's image (cached by content; the project layer rebuilt on change)" >&2
        hack/build-image.sh --import no >/dev/null
    else
        echo "note: not root; the real-node tests will be reported as skipped" >&2
    fi
elif [ -n "${CI:-}" ]; then
    echo "error: CI needs Go to build the Kubernetes control plane, the real node and" \
        "Prometheus for the cluster tests" >&2
    exit 1
else
    echo "note: Go not found; cluster tests will be reported as skipped" >&2
fi

echo "== ruff" >&2
.venv/bin/ruff check operator controllers tests benchmarks hack
echo "== mypy" >&2
.venv/bin/mypy
echo "== generated files are current" >&2
.venv/bin/qbackbone crds --check
hack/gen-deviceplugin.sh --check
hack/gen-dra.sh --check
if [ -n "${QB_K8S_BIN_DIR:-}" ]; then
    hack/verify-chart.sh  # needs helm from the control-plane cache
fi
echo "== pytest" >&2
set +e
.venv/bin/python -m pytest --timeout=900 "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
