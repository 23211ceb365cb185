#!/usr/bin/env bash
# Verify the Helm chart: its CRDs are exactly crds/ (regenerate crds/ with `qbackbone crds`,
# then `cp crds/*.yaml charts/qbackbone/crds/`), `helm lint` passes, and `helm template`
# renders with the default values and with every optional feature on.
# helm comes from hack/build-k8s.sh's binary cache (or $QB_K8S_BIN_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
chart=charts/qbackbone
all="$chart/ci/all-features-values.yaml"

if ! diff -r crds "$chart/crds" >/dev/null; then
  echo "verify-chart: $chart/crds differs from crds/:" >&2
  diff -r crds "$chart/crds" >&2 || true
  echo "verify-chart: fix with: rm $chart/crds/*.yaml && cp crds/*.yaml $chart/crds/" >&2
  exit 1
fi

bin="${QB_K8S_BIN_DIR:-$(hack/build-k8s.sh | tail -n1)}"
helm="$bin/helm"
"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" -f "$all"
"$helm" template qbackbone "$chart" --namespace qbackbone-system >/dev/null
"$helm" template qbackbone "$chart" --namespace qbackbone-system -f "$all" >/dev/null
echo "verify-chart: ok (crds in sync, lint, template default and all features)"
