#!/usr/bin/env bash
# Builds what a real node of the dev cluster needs (DESIGN.md section 7, "A real node"):
# kubelet and kube-proxy from the same k8s.io/kubernetes module as the control plane
# (hack/build-k8s.sh),
# containerd 2.x with its runc shim and ctr, runc, crictl, and the static `pause` sandbox
# binary from Kubernetes' build/pause/linux/pause.c packed as an OCI image archive (no
# registry is reachable: images are imported with `ctr -n k8s.io images import`).
# Debian packages it needs (libseccomp-dev for runc, containernetworking-plugins for the CNI
# plugins, iptables and conntrack for kube-proxy) are installed with apt-get when missing and
# running as root.
#
# Binaries are cached outside the repository, keyed by the pinned versions:
#   ${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/node/<key>/bin      kubelet containerd ... pause
#   ${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/node/<key>/images   pause OCI archive
#   ${QB_CACHE_DIR:-$HOME/.cache/qbackbone}/node/<key>/timings.jsonl   one line per run
# A warm run only checks the cache. The last line on stdout is the bin directory, so
#   export QB_NODE_BIN_DIR="$(hack/build-node.sh | tail -n1)"
# Progress and timings go to stderr. Needs: go (>= containerd's go directive), gcc with a
# static libc, pkg-config, python3; the Go module proxy; Debian's apt for the packages above.
set -euo pipefail

# The control plane's pins (same defaults as hack/build-k8s.sh): the kubelet must be built
# from the very module the API server was built from.
K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KUBECTL_LAYER_VERSION=${KUBECTL_LAYER_VERSION:-2.2.2}
# containerd v2.4.2: the newest 2.x patch release (2.4.2 carries security fixes); 2.x speaks
# CRI v1 as kubelet 1.36 requires and still supports cgroup v1, which this host has (its
# removal is not planned before 2029, RELEASES.md). Its config (version 4) is written by
# operator/qbackbone/dev/realnode_host.py.
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
# runc v1.5.3: containerd 2.4.2 is tested with runc 1.5.2 (script/setup/runc-version); 1.5.3
# is that line's security release. Built without the libpathrs tag (a Rust library Debian does
# not package), with seccomp (libseccomp-dev, CGO), as runc's Makefile does otherwise.
RUNC_VERSION=${RUNC_VERSION:-v1.5.3}
# crictl at the kubelet's minor version (cri-tools follows Kubernetes' minors): used to stop
# and remove every pod sandbox through CRI, with CNI teardown, before containerd stops.
CRICTL_VERSION=${CRICTL_VERSION:-v1.36.0}

here=$(cd "$(dirname "$0")" && pwd)
cache="${QB_CACHE_DIR:-$HOME/.cache/qbackbone}"
k8s_key="${K8S_VERSION}_etcd-${ETCD_VERSION}_layer-${KUBECTL_LAYER_VERSION}"
k8s_src="${cache}/k8s/${k8s_key}/src/kube"
key="${K8S_VERSION}_containerd-${CONTAINERD_VERSION}_runc-${RUNC_VERSION}_crictl-${CRICTL_VERSION}"
root="${cache}/node/${key}"
bin="${root}/bin"
src="${root}/src"
images="${root}/images"
mkdir -p "$bin" "$src" "$images"

log() { echo "build-node: $*" >&2; }
t0=$(date +%s)
timings=()   # "component seconds" pairs of this run, written to timings.jsonl at the end
timed() {    # timed <component> <function> [args]: run it and remember how long it took
    local start=$(date +%s) name=$1
    shift
    "$@"
    timings+=("$name $(( $(date +%s) - start ))")
}

# The Go caches are shared with hack/build-k8s.sh, so the kubelet reuses every package the
# control plane already compiled (same flags, same module versions).
gocache_root="${cache}/k8s/_go"
export GOMODCACHE="${gocache_root}/mod" GOCACHE="${gocache_root}/build"
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local
check_sumdb() {
    if [ -z "${GOSUMDB:-}" ] && ! curl -s -m 5 -o /dev/null https://sum.golang.org/ 2>/dev/null
    then
        export GOSUMDB=off
        log "sum.golang.org unreachable: GOSUMDB=off (modules trusted as served by the proxy)"
    fi
}
build_date="1970-01-01T00:00:00Z"   # pinned so that a rebuild is byte-identical

have() { [ -x "$bin/$1" ] && [ -f "$bin/.$1.ok" ]; }

# --- Debian packages -------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
apt_updated=0
ensure_packages() {   # ensure_packages <package>...: install the missing ones (root only)
    local missing=() p
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        log "missing Debian packages: ${missing[*]}; install them as root:" \
            "apt-get install -y ${missing[*]}"
        exit 1
    fi
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        apt-get update -qq >&2
        apt_updated=1
    fi
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
}
cni_dir=/usr/lib/cni
ensure_packages containernetworking-plugins
for p in bridge host-local loopback portmap; do
    [ -x "$cni_dir/$p" ] || { log "CNI plugin $cni_dir/$p missing"; exit 1; }
done

# --- kubelet ---------------------------------------------------------------------------------
kube_mod_dir() { echo "${GOMODCACHE}/k8s.io/kubernetes@${K8S_VERSION}"; }
ensure_k8s_source() {
    if [ ! -f "$k8s_src/go.mod" ]; then
        log "the control plane's Go module ${k8s_src} is missing: running build-k8s.sh"
        K8S_VERSION="$K8S_VERSION" ETCD_VERSION="$ETCD_VERSION" \
            KUBECTL_LAYER_VERSION="$KUBECTL_LAYER_VERSION" "$here/build-k8s.sh" >/dev/null
        [ -f "$k8s_src/go.mod" ] || { log "build-k8s.sh did not create $k8s_src/go.mod" \
            "(its binaries are cached: remove ${cache}/k8s/${k8s_key} to rebuild)"; exit 1; }
    fi
    if [ ! -d "$(kube_mod_dir)/build/pause" ]; then   # Go caches pruned since
        check_sumdb
        log "downloading k8s.io/kubernetes@${K8S_VERSION} into the Go module cache"
        (cd "$k8s_src" && go mod download "k8s.io/kubernetes@${K8S_VERSION}")
    fi
}

build_kube_cmd() {   # build_kube_cmd <kubelet|kube-proxy>
    local cmd=$1 mod="$src/kubelet" major minor
    major=${K8S_VERSION#v}; major=${major%%.*}
    minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
    check_sumdb
    log "${cmd} ${K8S_VERSION} (module of ${k8s_src})"
    mkdir -p "$mod"
    # A copy of the control plane's module (its go.mod pins the staging modules), so that
    # the kubelet's extra go.sum lines stay here.
    cp "$k8s_src/go.mod" "$k8s_src/go.sum" "$mod/"
    local pkg=k8s.io/component-base/version cgv=k8s.io/client-go/pkg/version
    local ldflags="-s -w" v
    for v in "$pkg" "$cgv"; do
        ldflags+=" -X ${v}.gitVersion=${K8S_VERSION} -X ${v}.gitMajor=${major}"
        ldflags+=" -X ${v}.gitMinor=${minor} -X ${v}.gitTreeState=clean"
        ldflags+=" -X ${v}.buildDate=${build_date} -X ${v}.gitCommit=${K8S_VERSION}"
    done
    (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/" \
        "k8s.io/kubernetes/cmd/${cmd}")
    touch "$bin/.${cmd}.ok"
}

# --- containerd, shim, ctr -------------------------------------------------------------------
wrapper_module() {   # wrapper_module <dir> <module@version>: a module that requires it
    local dir=$1 req=$2
    mkdir -p "$dir"
    if [ ! -f "$dir/go.mod" ] || ! grep -q "${req%@*} ${req#*@}" "$dir/go.mod"; then
        rm -f "$dir/go.mod" "$dir/go.sum"
        (cd "$dir" && go mod init "qbackbone.local/$(basename "$dir")-build" >/dev/null 2>&1 \
            && go mod edit -require="$req")
    fi
}

build_containerd() {
    local mod="$src/containerd" pkg=github.com/containerd/containerd/v2
    check_sumdb
    log "containerd ${CONTAINERD_VERSION} (containerd, containerd-shim-runc-v2, ctr)"
    wrapper_module "$mod" "${pkg}@${CONTAINERD_VERSION}"
    local ldflags="-s -w -X ${pkg}/version.Version=${CONTAINERD_VERSION}"
    ldflags+=" -X ${pkg}/version.Revision=${CONTAINERD_VERSION}"
    ldflags+=" -X ${pkg}/version.Package=github.com/containerd/containerd"
    # Static, as containerd's "static" release: CGO off; the shim without gRPC, as its
    # Makefile builds it.
    (
        cd "$mod"
        CGO_ENABLED=0 go build -trimpath -tags urfave_cli_no_docs -ldflags "$ldflags" \
            -o "$bin/" "${pkg}/cmd/containerd" "${pkg}/cmd/ctr"
        CGO_ENABLED=0 go build -trimpath -tags "urfave_cli_no_docs no_grpc" \
            -ldflags "$ldflags" -o "$bin/" "${pkg}/cmd/containerd-shim-runc-v2"
    )
    for b in containerd ctr containerd-shim-runc-v2; do touch "$bin/.$b.ok"; done
}

build_runc() {
    local mod="$src/runc" pkg=github.com/opencontainers/runc
    ensure_packages libseccomp-dev
    check_sumdb
    log "runc ${RUNC_VERSION} (seccomp, CGO)"
    wrapper_module "$mod" "${pkg}@${RUNC_VERSION}"
    # runc needs CGO (libcontainer/nsenter) and links libseccomp dynamically (Debian's).
    (cd "$mod" && CGO_ENABLED=1 go build -trimpath -buildmode=pie \
        -tags "seccomp urfave_cli_no_docs" \
        -ldflags "-s -w -X main.gitCommit=${RUNC_VERSION}" -o "$bin/runc" "$pkg")
    touch "$bin/.runc.ok"
}

build_crictl() {
    local mod="$src/crictl" pkg=sigs.k8s.io/cri-tools
    check_sumdb
    log "crictl ${CRICTL_VERSION}"
    wrapper_module "$mod" "${pkg}@${CRICTL_VERSION}"
    (cd "$mod" && CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X ${pkg}/pkg/version.Version=${CRICTL_VERSION#v}" \
        -o "$bin/crictl" "${pkg}/cmd/crictl")
    touch "$bin/.crictl.ok"
}

# --- pause -----------------------------------------------------------------------------------
pause_tag() { sed -n 's/^TAG ?= *//p' "$(kube_mod_dir)/build/pause/Makefile"; }
build_pause() {
    local dir tag
    dir=$(kube_mod_dir)
    tag=$(pause_tag)
    log "pause ${tag} from ${dir}/build/pause/linux/pause.c (gcc -static)"
    # The flags of build/pause/Makefile; REV is this project's, not a git revision.
    gcc -Os -Wall -Werror -static "-DVERSION=v${tag}-qbackbone" \
        -o "$bin/pause" "$dir/build/pause/linux/pause.c"
    strip "$bin/pause"
    touch "$bin/.pause.ok"
}
pause_image() {
    local tag
    tag=$(pause_tag)
    # realnode.py reads the name back from the archive and makes it the sandbox image.
    python3 -I "$here/../operator/qbackbone/dev/images.py" \
        --name "localhost/qbackbone/pause:${tag}" --file "pause=$bin/pause" \
        --entrypoint /pause --output "$images/pause.oci.tar" >&2
    touch "$images/.pause.oci.tar.ok"
}

built=0
if ! have kubelet; then ensure_k8s_source; timed kubelet build_kube_cmd kubelet; built=1; fi
# kube-proxy gives pods the Service IPs (the API server's 10.0.0.1 above all) with iptables.
ensure_packages iptables conntrack
if ! have kube-proxy; then
    ensure_k8s_source; timed kube-proxy build_kube_cmd kube-proxy; built=1
fi
if ! have containerd || ! have ctr || ! have containerd-shim-runc-v2; then
    timed containerd build_containerd; built=1
fi
if ! have runc; then timed runc build_runc; built=1; fi
ensure_packages libseccomp-dev libseccomp2   # runc links libseccomp at run time
if ! have crictl; then timed crictl build_crictl; built=1; fi
if ! have pause; then ensure_k8s_source; timed pause build_pause; built=1; fi
if [ ! -f "$images/.pause.oci.tar.ok" ] || [ "$bin/pause" -nt "$images/pause.oci.tar" ]; then
    timed pause-image pause_image; built=1
fi

# Sanity: every binary runs and reports the pinned version.
check() {   # check <binary> <expected substring> <args>...
    local b=$1 want=$2 out; shift 2
    out=$("$bin/$b" "$@" 2>&1) || { log "$b $* failed: $out"; exit 1; }
    case "$out" in *"$want"*) ;; *) log "$b reports: $out (wanted $want)"; exit 1 ;; esac
}
check kubelet "Kubernetes ${K8S_VERSION}" --version
check kube-proxy "Kubernetes ${K8S_VERSION}" --version
check containerd "${CONTAINERD_VERSION}" --version
check ctr "${CONTAINERD_VERSION}" --version
check containerd-shim-runc-v2 "${CONTAINERD_VERSION}" -v
check runc "runc version ${RUNC_VERSION#v}" --version
check crictl "${CRICTL_VERSION#v}" --version
check pause "pause.c v" -v

elapsed=$(( $(date +%s) - t0 ))
if [ "$built" = 1 ]; then
    log "built in ${elapsed}s; ${root} uses $(du -sh "$root" | cut -f1)"
else
    log "cached (${root}), checked in ${elapsed}s"
fi
for t in "${timings[@]}"; do log "  ${t% *}: ${t#* }s"; done
{
    printf '{"when": "%s", "kind": "%s", "seconds": %s, "components": {' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$([ "$built" = 1 ] && echo build || echo warm)" \
        "$elapsed"
    sep=""
    for t in "${timings[@]}"; do printf '%s"%s": %s' "$sep" "${t% *}" "${t#* }"; sep=", "; done
    printf '}}\n'
} >> "$root/timings.jsonl"

echo "$bin"
