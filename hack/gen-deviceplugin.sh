#!/usr/bin/env bash
# Generates the Python stubs of the kubelet device-plugin API v1beta1 (api_pb2.py, api_pb2.pyi,
# api_pb2_grpc.py) from operator/qbackbone/deviceplugin/v1beta1/api.proto. The stubs are
# committed (see docs/device-plugin.md); this script is how they are made and checked.
#
#   hack/gen-deviceplugin.sh                 regenerate the stubs in place
#   hack/gen-deviceplugin.sh --check         fail if the committed stubs differ from a fresh run
#   hack/gen-deviceplugin.sh --verify-proto  fetch api.proto from the Go module proxy (needs go)
#                                            and fail if the committed copy's upstream text differs
#
# The generator is pinned to grpcio-tools 1.81.1: newer grpcio-tools want protobuf>=7 while
# ortools wants protobuf<6.34, and the version is written into api_pb2_grpc.py, so an exact pin
# is what makes --check reproducible. The project venv is used when it has that version;
# otherwise a small tool venv is made once under ~/.cache/qbackbone.
set -euo pipefail
cd "$(dirname "$0")/.."

GRPC_TOOLS_VERSION=1.81.1
KUBELET_VERSION=v0.36.3
PROTO_SHA256=b780bfeac99c93c231dc165ce417f4da88481eececa0c65eeb90f5f2e9b5b65b
SRC_ROOT=operator
PKG_DIR=qbackbone/deviceplugin/v1beta1
PROTO=$PKG_DIR/api.proto
OUTPUTS=(api_pb2.py api_pb2.pyi api_pb2_grpc.py)
MARKER='// ---- upstream text ----'

upstream_text() {  # the committed proto without the provenance header
    sed -n "\|^$MARKER\$|,\$p" "$SRC_ROOT/$PROTO" | tail -n +2
}

if [ "${1:-}" = "--verify-proto" ]; then
    command -v go >/dev/null || { echo "error: --verify-proto needs go" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && go mod init tmp >/dev/null 2>&1)
    dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubelet@$KUBELET_VERSION" |
          sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    fetched="$dir/pkg/apis/deviceplugin/v1beta1/api.proto"
    if ! diff -u "$fetched" <(upstream_text); then
        echo "error: $SRC_ROOT/$PROTO differs from k8s.io/kubelet@$KUBELET_VERSION" >&2
        exit 1
    fi
    echo "api.proto matches k8s.io/kubelet@$KUBELET_VERSION" >&2
    exit 0
fi

if [ "$(upstream_text | sha256sum | cut -d' ' -f1)" != "$PROTO_SHA256" ]; then
    echo "error: the upstream text of $SRC_ROOT/$PROTO was edited (sha256 differs)" >&2
    exit 1
fi

tools_python() {
    local py=${PYTHON:-.venv/bin/python}
    if [ -x "$py" ] && [ "$("$py" -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))' \
            2>/dev/null)" = "$GRPC_TOOLS_VERSION" ]; then
        echo "$py"
        return
    fi
    local venv=${XDG_CACHE_HOME:-$HOME/.cache}/qbackbone/grpcio-tools-$GRPC_TOOLS_VERSION
    if [ ! -x "$venv/bin/python" ]; then
        echo "making $venv (grpcio-tools==$GRPC_TOOLS_VERSION)" >&2
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install -q "grpcio-tools==$GRPC_TOOLS_VERSION"
    fi
    echo "$venv/bin/python"
}

generate() {  # generate into $1 (a source root), laid out like $SRC_ROOT
    local out=$1 py
    py=$(tools_python)
    mkdir -p "$out/$PKG_DIR"
    # -I at the source root makes api_pb2_grpc.py import qbackbone.deviceplugin.v1beta1.api_pb2;
    # the wire names (package v1beta1, services v1beta1.Registration/DevicePlugin) are unchanged.
    "$py" -m grpc_tools.protoc -I "$SRC_ROOT" --python_out="$out" --pyi_out="$out" \
        --grpc_python_out="$out" "$SRC_ROOT/$PROTO"
}

if [ "${1:-}" = "--check" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    generate "$tmp"
    status=0
    for f in "${OUTPUTS[@]}"; do
        diff -u "$SRC_ROOT/$PKG_DIR/$f" "$tmp/$PKG_DIR/$f" >&2 || status=1
    done
    [ "$status" -eq 0 ] && echo "device-plugin stubs are up to date" >&2 ||
        echo "error: device-plugin stubs are stale: run hack/gen-deviceplugin.sh" >&2
    exit "$status"
elif [ -n "${1:-}" ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi

generate "$SRC_ROOT"
echo "generated ${OUTPUTS[*]} in $SRC_ROOT/$PKG_DIR" >&2
