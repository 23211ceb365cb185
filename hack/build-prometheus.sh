#!/usr/bin/env bash
# Builds a Prometheus server (and promtool) from the Go module proxy, for the dashboard's
# tests and picture (docs/observability.md): tests/observability/test_dashboard.py lets it
# scrape an operator registry and evaluate every dashboard query; hack/render-dashboard.py
# backfills a recording with promtool and draws the panels from its answers.
#
# Binaries are cached outside the repository, keyed by the pinned version:
#   ${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/prometheus/<key>/bin      prometheus promtool
#   ${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/prometheus/<key>/timings.jsonl   one line per run
# A warm run only checks the cache. The last line on stdout is the bin directory, so
#   export QB_PROMETHEUS_BIN_DIR="$(hack/build-prometheus.sh | tail -n1)"
# Progress and timings go to stderr. Needs: go (>= the go directive of PROMETHEUS_VERSION) and
# the Go module proxy. The Go caches are shared with hack/build-k8s.sh ($QB_CACHE_DIR/k8s/_go).
set -euo pipefail

# Prometheus 3.16.0, published on the module proxy as github.com/prometheus/prometheus v0.316.0
# (the Go module tags 3.x.y as v0.3xx.y): the newest release when this was pinned (2026-11-05),
# and its go directive (1.26.7) is met by the project's Go (1.26.8) with GOTOOLCHAIN=local.
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}
# Build tags: netgo as the release builds (.promu.yml); `remove_all_sd` drops the cloud
# service discoveries (AWS, Azure, GCE, Consul, ...: most of the dependency tree and of the
# build time) and keeps static_configs, file and http SD, all the dev cluster needs. Not
# `builtinassets`: the web UI's compiled assets are not in the Go module (they are built with
# npm); the HTTP API the tests and the renderer use works without them.
PROMETHEUS_TAGS=${PROMETHEUS_TAGS:-netgo,remove_all_sd}

cache="${QB_CACHE_DIR:-$HOME/.cache/qbackbone}"
key="${PROMETHEUS_VERSION}_${PROMETHEUS_TAGS//,/-}"
root="${cache}/prometheus/${key}"
bin="${root}/bin"
src="${root}/src"
mkdir -p "$bin" "$src"

log() { echo "build-prometheus: $*" >&2; }
t0=$(date +%s)
timings=()   # "component seconds" pairs of this run, written to timings.jsonl at the end
timed() {    # timed <component> <function>: run it and remember how long it took
    local start
    start=$(date +%s)
    "$2"
    timings+=("$1 $(( $(date +%s) - start ))")
}

# The Go module and build caches are shared with hack/build-k8s.sh (so packages both use at the
# same version compile once); the repository stays clean.
gocache_root="${cache}/k8s/_go"
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

# The version as Prometheus reports it (3.16.0 for v0.316.0), and a build date pinned so that a
# rebuild is byte-identical.
release() {
    local v=${PROMETHEUS_VERSION#v0.} patch
    patch=${v#*.}
    echo "3.$(( 10#${v%%.*} - 300 )).${patch}"
}
RELEASE=$(release)
ldflags="-s -w"
for kv in "Version=${RELEASE}" "Revision=${PROMETHEUS_VERSION}" "Branch=release" \
          "BuildUser=qbackbone" "BuildDate=19700101-00:00:00"; do
    ldflags+=" -X github.com/prometheus/common/version.${kv}"
done

have() { [ -x "$bin/$1" ] && [ -f "$bin/.$1.ok" ]; }

prepare_module() (   # a subshell: the cd stays inside
    log "prometheus ${RELEASE} (github.com/prometheus/prometheus@${PROMETHEUS_VERSION})," \
        "tags ${PROMETHEUS_TAGS}"
    cd "$src"
    if [ ! -f go.mod ] || ! grep -q "github.com/prometheus/prometheus ${PROMETHEUS_VERSION}" go.mod
    then
        rm -f go.mod go.sum
        go mod init qbackbone.local/prometheus-build >/dev/null 2>&1
        go mod edit -require="github.com/prometheus/prometheus@${PROMETHEUS_VERSION}"
    fi
    # A dependent module gets Prometheus' own requirements (it has no replace directives), so
    # the versions are those of its release; `go mod download` fills go.sum for them.
    go mod download github.com/prometheus/prometheus
    go list -deps -tags "$PROMETHEUS_TAGS" github.com/prometheus/prometheus/cmd/prometheus \
        github.com/prometheus/prometheus/cmd/promtool >/dev/null
)

build_one() {   # build_one <name>: ./cmd/<name> into $bin
    (cd "$src" && go build -trimpath -tags "$PROMETHEUS_TAGS" -ldflags "$ldflags" \
        -o "$bin/$1" "github.com/prometheus/prometheus/cmd/$1")
    touch "$bin/.$1.ok"
}
build_prometheus() { build_one prometheus; }
build_promtool() { build_one promtool; }   # backfills recordings (tsdb create-blocks-from)

built=0
if ! have prometheus || ! have promtool; then
    check_sumdb
    timed download prepare_module
    # (if, not ||: errexit must hold inside the build functions)
    if ! have prometheus; then timed prometheus build_prometheus; fi
    if ! have promtool; then timed promtool build_promtool; fi
    built=1
fi

# Sanity: both run and report the pinned version.
for b in prometheus promtool; do
    "$bin/$b" --version 2>&1 | grep -q "version ${RELEASE} " \
        || { log "$b reports: $("$bin/$b" --version 2>&1 | head -n1)"; exit 1; }
done

elapsed=$(( $(date +%s) - t0 ))
sizes=()
for b in prometheus promtool; do sizes+=("$b $(stat -c %s "$bin/$b")"); done
if [ "$built" = 1 ]; then
    log "built in ${elapsed}s; ${root} uses $(du -sh "$root" | cut -f1)," \
        "Go caches ${gocache_root} $(du -sh "$gocache_root" | cut -f1)"
else
    log "cached (${root}), checked in ${elapsed}s"
fi
for t in "${timings[@]}"; do log "  ${t% *}: ${t#* }s"; done
for s in "${sizes[@]}"; do log "  ${s% *}: $(( ${s#* } / 1048576 )) MiB"; done
{
    printf '{"when": "%s", "kind": "%s", "seconds": %s, "version": "%s", "tags": "%s", ' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$([ "$built" = 1 ] && echo build || echo warm)" \
        "$elapsed" "$PROMETHEUS_VERSION" "$PROMETHEUS_TAGS"
    printf '"components": {'
    sep=""
    for t in "${timings[@]}"; do printf '%s"%s": %s' "$sep" "${t% *}" "${t#* }"; sep=", "; done
    printf '}, "bytes": {'
    sep=""
    for s in "${sizes[@]}"; do printf '%s"%s": %s' "$sep" "${s% *}" "${s#* }"; sep=", "; done
    printf '}}\n'
} >> "$root/timings.jsonl"

echo "$bin"
