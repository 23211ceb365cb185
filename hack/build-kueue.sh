#!/usr/bin/env bash
# Builds kueue (sigs.k8s.io/kueue, the manager binary cmd/kueue) from the Go module proxy, for
# the QPU quotas of docs/kueue.md, the way hack/build-k8s.sh builds the control plane.
#
# The binary is cached outside the repository, keyed by the pinned version:
#   ${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/kueue/<version>/bin/kueue
# and <version>/source holds the path of the kueue module's source in the Go module cache:
# its config/components/{crd,webhook} are the CRDs and webhook configurations that
# operator/qbackbone/dev/kueue.py installs at run time (nothing upstream is copied into the
# repository). A warm run only checks the cache. The last line on stdout is the bin
# directory, so
#   export QB_KUEUE_BIN_DIR="$(hack/build-kueue.sh | tail -n1)"
# Progress and timings go to stderr. Needs: go (>= the go directive of kueue's go.mod) and
# the Go module proxy. QB_K8S_PRUNE_GO_CACHE=1 (build-k8s.sh) would also remove the module
# source: run this script again afterwards and it fetches the source back (the binary stays).
#
# Version: v0.17.1, the newest kueue the module proxy serves here (v0.18.x is refused). Its
# DRA quota support is the alpha feature gate DynamicResourceAllocation (resource.k8s.io/v1).
set -euo pipefail

KUEUE_VERSION=${KUEUE_VERSION:-v0.17.1}

root="${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/kueue/${KUEUE_VERSION}"
bin="${root}/bin"
mkdir -p "$bin"

log() { echo "build-kueue: $*" >&2; }
t0=$(date +%s)

# The Go caches are shared with hack/build-k8s.sh (many modules in common: client-go, ...).
gocache_root="${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/k8s/_go"
export GOMODCACHE="${gocache_root}/mod" GOCACHE="${gocache_root}/build"
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local
check_sumdb() {
    if [ -z "${GOSUMDB:-}" ] && ! curl -s -m 5 -o /dev/null https://sum.golang.org/ 2>/dev/null
    then
        export GOSUMDB=off
        log "sum.golang.org unreachable: GOSUMDB=off (modules trusted as served by the proxy)"
    fi
}

# The module source (its CRDs and webhook manifests): downloaded when the cache lost it.
source_dir() {
    local dir="${GOMODCACHE}/sigs.k8s.io/kueue@${KUEUE_VERSION}"
    if [ ! -f "$dir/config/components/crd/bases/kueue.x-k8s.io_workloads.yaml" ]; then
        check_sumdb
        dir=$(go mod download -json "sigs.k8s.io/kueue@${KUEUE_VERSION}" \
            | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
        [ -n "$dir" ] || { log "go mod download sigs.k8s.io/kueue@${KUEUE_VERSION} failed"; exit 1; }
    fi
    echo "$dir"
}

built=0
if ! [ -x "$bin/kueue" ] || ! [ -f "$bin/.kueue.ok" ]; then
    check_sumdb
    log "kueue ${KUEUE_VERSION} (cmd/kueue)"
    pkg=sigs.k8s.io/kueue/pkg/version
    # Pinned build date and commit: a rebuild is byte-identical.
    ldflags="-s -w -X ${pkg}.GitVersion=${KUEUE_VERSION} -X ${pkg}.GitCommit=${KUEUE_VERSION}"
    ldflags+=" -X ${pkg}.BuildDate=1970-01-01T00:00:00Z"
    # go install pkg@version: kueue's own go.mod decides every dependency (it has no replace
    # directives), in module mode outside any main module.
    GOFLAGS="-buildvcs=false" GOBIN="$bin" \
        go install -trimpath -ldflags "$ldflags" "sigs.k8s.io/kueue/cmd/kueue@${KUEUE_VERSION}"
    touch "$bin/.kueue.ok"
    built=1
fi

src=$(source_dir)
echo "$src" > "${root}/source"

# Sanity: the binary runs (it refuses to start without a cluster, but --help answers).
"$bin/kueue" --help >/dev/null 2>&1 || { log "$bin/kueue --help failed"; exit 1; }

if [ "$built" = 1 ]; then
    log "built in $(( $(date +%s) - t0 ))s; ${root} uses $(du -sh "$root" | cut -f1)"
else
    log "cached (${root})"
fi
echo "$bin"
