"""The vendored kubelet protos of the DRA kubelet plugin: the upstream text unchanged with its
licence, the committed stubs what hack/gen-dra.sh makes, and the wire names the kubelet uses."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from qbackbone.dra.kubeletapi.drav1 import api_pb2 as dra_pb2
from qbackbone.dra.kubeletapi.registration import api_pb2 as reg_pb2
from tests.conftest import REPO

API = REPO / "operator" / "qbackbone" / "dra" / "kubeletapi"
# k8s.io/kubelet v0.36.3 pkg/apis/dra/v1/api.proto, pkg/apis/pluginregistration/v1/api.proto
UPSTREAM_SHA256 = {
    "drav1": "b3066ad7f6abcfd0003c47b06ceb801d76997d78d6be505597478d3905b9cc57",
    "registration": "7a67a0000a1a167c155286834bc9ccb489f8bcdb394e006daba270189c272afa",
}


@pytest.mark.parametrize("sub", sorted(UPSTREAM_SHA256))
def test_proto_is_the_upstream_text_with_its_licence(sub: str) -> None:
    header, _, upstream = (API / sub / "api.proto").read_text().partition(
        "// ---- upstream text ----\n")
    assert "SPDX-License-Identifier: Apache-2.0" in header
    assert "The Kubernetes Authors" in header and "k8s.io/kubelet v0.36.3" in header
    assert hashlib.sha256(upstream.encode()).hexdigest() == UPSTREAM_SHA256[sub]
    assert "gogo" not in upstream  # nothing to strip in this version
    assert "k8s.io/kubelet v0.36.3" in (API / "NOTICE").read_text()


def test_wire_names_are_the_kubelets() -> None:
    assert dra_pb2.DESCRIPTOR.services_by_name["DRAPlugin"].full_name == \
        "k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin"
    assert reg_pb2.DESCRIPTOR.services_by_name["Registration"].full_name == \
        "pluginregistration.Registration"


def test_committed_stubs_are_what_the_generator_makes() -> None:
    result = subprocess.run(["bash", str(REPO / "hack" / "gen-dra.sh"), "--check"],
                            env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
