#!/usr/bin/env bash
# Generates the Python stubs of the kubelet's DRA plugin API v1 and plugin registration API v1
# (api_pb2.py, api_pb2.pyi, api_pb2_grpc.py in each directory) from the api.proto files under
# operator/qbackbone/dra/kubeletapi/. The stubs are committed (see docs/dra.md); this script is
# how they are made and checked. Mirrors hack/gen-deviceplugin.sh.
#
#   hack/gen-dra.sh                 regenerate the stubs in place
#   hack/gen-dra.sh --check         fail if the committed stubs differ from a fresh run
#   hack/gen-dra.sh --verify-proto  fetch the api.proto files from the Go module proxy (needs go)
#                                   and fail if a committed copy's upstream text differs
#
# The generator is pinned to grpcio-tools 1.81.1 (same reason as gen-deviceplugin.sh: newer
# ones want protobuf>=7, ortools wants protobuf<6.34, and the version is written into
# api_pb2_grpc.py). The project venv is used when it has that version; otherwise a small tool
# venv is made once under ~/.cache/qbackbone.
set -euo pipefail
cd "$(dirname "$0")/.."

GRPC_TOOLS_VERSION=1.81.1
KUBELET_VERSION=v0.36.3
SRC_ROOT=operator
BASE=qbackbone/dra/kubeletapi
# local dir : upstream path in k8s.io/kubelet : sha256 of the upstream text
PROTOS=(
    "drav1:pkg/apis/dra/v1/api.proto:b3066ad7f6abcfd0003c47b06ceb801d76997d78d6be505597478d3905b9cc57"
    "registration:pkg/apis/pluginregistration/v1/api.proto:7a67a0000a1a167c155286834bc9ccb489f8bcdb394e006daba270189c272afa"
)
OUTPUTS=(api_pb2.py api_pb2.pyi api_pb2_grpc.py)
MARKER='// ---- upstream text ----'

upstream_text() {  # $1: a committed proto; prints it without the provenance header
    sed -n "\|^$MARKER\$|,\$p" "$1" | tail -n +2
}

if [ "${1:-}" = "--verify-proto" ]; then
    command -v go >/dev/null || { echo "error: --verify-proto needs go" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && go mod init tmp >/dev/null 2>&1)
    dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubelet@$KUBELET_VERSION" |
          sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    status=0
    for entry in "${PROTOS[@]}"; do
        IFS=: read -r sub upstream _sha <<<"$entry"
        proto="$SRC_ROOT/$BASE/$sub/api.proto"
        if ! diff -u "$dir/$upstream" <(upstream_text "$proto"); then
            echo "error: $proto differs from k8s.io/kubelet@$KUBELET_VERSION $upstream" >&2
            status=1
        else
            echo "$proto matches k8s.io/kubelet@$KUBELET_VERSION $upstream" >&2
        fi
    done
    exit "$status"
fi

for entry in "${PROTOS[@]}"; do
    IFS=: read -r sub _upstream sha <<<"$entry"
    proto="$SRC_ROOT/$BASE/$sub/api.proto"
    if [ "$(upstream_text "$proto" | sha256sum | cut -d' ' -f1)" != "$sha" ]; then
        echo "error: the upstream text of $proto was edited (sha256 differs)" >&2
        exit 1
    fi
done

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
    local out=$1 py entry sub
    py=$(tools_python)
    for entry in "${PROTOS[@]}"; do
        sub=${entry%%:*}
        mkdir -p "$out/$BASE/$sub"
        # -I at the source root makes api_pb2_grpc.py import qbackbone.dra.kubeletapi.<sub>.api_pb2;
        # the wire names (packages k8s.io.kubelet.pkg.apis.dra.v1 and pluginregistration) are
        # unchanged.
        "$py" -m grpc_tools.protoc -I "$SRC_ROOT" --python_out="$out" --pyi_out="$out" \
            --grpc_python_out="$out" "$SRC_ROOT/$BASE/$sub/api.proto"
    done
}

if [ "${1:-}" = "--check" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    generate "$tmp"
    status=0
    for entry in "${PROTOS[@]}"; do
        sub=${entry%%:*}
        for f in "${OUTPUTS[@]}"; do
            diff -u "$SRC_ROOT/$BASE/$sub/$f" "$tmp/$BASE/$sub/$f" >&2 || status=1
        done
    done
    [ "$status" -eq 0 ] && echo "DRA kubelet API stubs are up to date" >&2 ||
        echo "error: DRA kubelet API stubs are stale: run hack/gen-dra.sh" >&2
    exit "$status"
elif [ -n "${1:-}" ]; then
    sed -n '2,11p' "$0" >&2
    exit 2
fi

generate "$SRC_ROOT"
echo "generated ${OUTPUTS[*]} in $SRC_ROOT/$BASE/{drav1,registration}" >&2
