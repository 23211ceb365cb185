"""Expectation-value jobs on a noisy QPU through the operator: the fragment pod runs the
mitigated Estimator (``k8s.estimation``), the result reports stdError and systematicError and
how it was mitigated, and verification accepts it within that uncertainty, never as an exact
match. A share moved onto the noisy QPU runs with, and is reported under, its mitigation.

The noisy QPU is a fake device (``fake_manila``: an Aer simulator with its calibration's noise)
on one of the agent's QPUs that is a QPUNode only while a test uses it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from qbackbone.k8s.names import attempt_name, fragment_name, input_name
from tests.operator.conftest import SLOW_QPUS
from tests.operator.kit import (
    G,
    V,
    condition,
    create,
    create_ready_qpunode,
    delete_qpunode,
    policy,
    qpunode,
    quantum_job,
    ready_status,
    wait_job,
)
from tests.operator.test_jobs import exact
from tests.operator.test_qpu_loss import pods_on

pytestmark = pytest.mark.cluster

QASM = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
ry(0.7) q[0];
cx q[0], q[1];
rx(1.1) q[2];
cx q[1], q[2];
ry(0.4) q[3];
cx q[2], q[3];
"""
OBSERVABLES = ["ZZII", "IZZI", "IIIZ", "XXXX"]
NOISY = SLOW_QPUS[0]
NOISY_SHOT_TIME = "100us"  # ZNE runs 4 shots per shot: 400 us per requested shot
GHOST_SHOT_TIME = "400us"  # an ideal QPU as fast as that: a split by speed halves the shots


def _gone(custom: client.CustomObjectsApi, name: str) -> bool:
    try:
        custom.get_cluster_custom_object(G, V, "qpunodes", name)
    except client.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


@pytest.fixture
def noisy(api: client.ApiClient, fleet: tuple[str, ...]) -> Iterator[str]:
    """A Ready fake_manila QPUNode on one of the agent's QPUs; deleted (and gone) after."""
    custom = client.CustomObjectsApi(api)
    custom.create_cluster_custom_object(G, V, "qpunodes",
                                        qpunode(NOISY, "fake", "fake_manila",
                                                shotTime=NOISY_SHOT_TIME))
    wait_for(partial(ready_status, custom, NOISY, "True"), 60, what=f"QPUNode {NOISY} Ready")
    yield NOISY
    delete_qpunode(api, NOISY)
    wait_for(partial(_gone, custom, NOISY), 30, what=f"QPUNode {NOISY} deleted")


def _check_mitigated(job: dict[str, Any], qpu: str) -> dict[str, Any]:
    """Succeeded on ``qpu`` with mitigated values within 3 total sigma of exact; the result."""
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    result = status["result"]
    assert result["path"] == "SingleQPU" and result["qpus"] == [qpu], result
    assert result["backends"] == ["fake_manila"] and result["idealSimulator"] is False
    (report,) = result["mitigation"]
    assert report["level"] in ("Readout", "ZNE") and report["qpus"] == [qpu], report
    assert "TREX" in report["techniques"]
    for ev, want in zip(result["expectationValues"], exact(QASM, OBSERVABLES), strict=True):
        assert ev["systematicError"] > 0, ev
        total = math.hypot(ev["stdError"], ev["systematicError"])
        assert abs(ev["value"] - want) <= 3 * total, (ev, want)
    verified = condition(job, "Verified")
    assert verified is not None and verified["status"] == "True", verified
    assert verified["reason"] == "WithinReportedUncertainty", verified
    assert status["verification"]["noisy"] is True
    return dict(result)


def _result_configmaps(core: client.CoreV1Api, namespace: str, job: str) -> list[Any]:
    return core.list_namespaced_config_map(
        namespace, label_selector=f"qbackbone.io/job={job},qbackbone.io/role=result").items


def test_a_noisy_share_runs_the_mitigated_estimator_in_its_pod(
        api: client.ApiClient, namespace: str, noisy: str, core: client.CoreV1Api) -> None:
    create(api, namespace, quantum_job("mitigated", QASM, OBSERVABLES, shots=2000,
                                       execution={"mode": "SingleQPU",
                                                  "qpuSelector": {"names": [noisy]}}))
    job = wait_job(api, namespace, "mitigated", timeout=180)
    result = _check_mitigated(job, noisy)
    assert result["mitigation"][0]["level"] == "ZNE"  # no deadline: ZNE's 4x shots fit
    assert result["shots"] == 2 * 2000 * 4  # 2 bases x 2000 shots x ZNE's 4x
    (out,) = _result_configmaps(core, namespace, "mitigated")
    assert "estimates.json" in out.data and out.data["counts.json"] == "[]"
    (inp,) = core.list_namespaced_config_map(
        namespace, label_selector="qbackbone.io/job=mitigated,qbackbone.io/role=input").items
    assert "estimator.json" in inp.data
    wait_for(lambda: [p for p in pods_on(core, namespace, "mitigated", noisy)
                      if p.status.phase == "Succeeded"], 20, what="the fragment pod Succeeded")


def test_a_share_moved_onto_the_noisy_qpu_is_mitigated_there(
        api: client.ApiClient, namespace: str, noisy: str, core: client.CoreV1Api) -> None:
    """A policy lets an ideal QPUNode no node advertises compete with the noisy QPU
    (``hardware.idealSimulators: Allowed``) and splits every job over both by speed
    (``shotSplitting: Always``; the ghost is modelled as fast as the noisy QPU's ZNE shots,
    so each takes half). The ghost's share is planned for counts (nothing to mitigate on an
    ideal QPU); the ghost is then deleted: that share moves to the noisy QPU and runs the
    Estimator there with the mitigation that QPU was assessed with, and the result is the
    noisy QPU's alone."""
    ghost = "op-ghost-mitigated"
    create_ready_qpunode(api, ghost, qubits=8, shotTime=GHOST_SHOT_TIME)
    create(api, namespace, policy("ideal-split", hardware={"idealSimulators": "Allowed"},
                                  scheduler={"shotSplitting": "Always"}))
    moved_pod = attempt_name(fragment_name("moved", ghost), 1)
    try:
        create(api, namespace, quantum_job("moved", QASM, OBSERVABLES, shots=2000,
                                           policyRef={"name": "ideal-split"},
                                           execution={"mode": "SingleQPU",
                                                      "qpuSelector": {"names": [ghost, noisy]}}))
        wait_for(lambda: pods_on(core, namespace, "moved", ghost), 60,
                 what=f"the share waiting on {ghost}")
        delete_qpunode(api, ghost)
        moved = time.monotonic()
        wait_for(lambda: [p for p in pods_on(core, namespace, "moved", noisy)
                          if p.metadata.name == moved_pod], 30, interval=0.1,
                 what=f"the share moved to {noisy}")
        print(f"\nshare moved {time.monotonic() - moved:.2f}s after its QPUNode was deleted")
        job = wait_job(api, namespace, "moved", timeout=240)
    finally:
        delete_qpunode(api, ghost)
    decision = job["status"]["decision"]
    assert sorted(decision["eligibleQpus"]) == sorted([ghost, noisy]), decision
    result = _check_mitigated(job, noisy)
    assert result["mitigation"][0]["level"] == "ZNE"
    assert result["shots"] == 2 * 2000 * 4  # both halves ran on the noisy QPU with ZNE's 4x
    assert [f["qpu"] for f in job["status"]["plan"]["fragments"]] == [noisy, noisy]
    assert ghost not in str(result)
    inputs = core.list_namespaced_config_map(
        namespace, label_selector="qbackbone.io/job=moved,qbackbone.io/role=input").items
    estimated = {c.metadata.name: c.metadata.labels.get("qbackbone.io/qpu") for c in inputs
                 if "estimator.json" in (c.data or {})}
    assert estimated == {input_name(fragment_name("moved", noisy)): noisy,
                         input_name(moved_pod): noisy}
    planned = {c.metadata.name: c for c in inputs}.get(input_name(fragment_name("moved", ghost)))
    if planned is not None:  # the ghost's own input: counts on an ideal QPU
        assert planned.metadata.labels.get("qbackbone.io/qpu") == ghost
        assert "estimator.json" not in (planned.data or {})


GHZ6 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[6];
h q[0];
cx q[0], q[1];
cx q[1], q[2];
cx q[2], q[3];
cx q[3], q[4];
cx q[4], q[5];
"""
GHZ6_OBSERVABLES = ["ZZZZZZ", "IIIIZZ", "XXXXXX"]


def test_cut_fragments_on_the_noisy_qpu_are_readout_corrected(
        api: client.ApiClient, namespace: str, noisy: str, core: client.CoreV1Api) -> None:
    """Six qubits do not fit the 5-qubit noisy QPU: the job is cut onto it. Each fragment's
    worker says which qubit each clbit read; the operator corrects the counts with the QPU's
    readout calibration (its QPUNode status) and reports so."""
    create(api, namespace, quantum_job("cut-noisy", GHZ6, GHZ6_OBSERVABLES, shots=2000,
                                       execution={"mode": "Distributed",
                                                  "qpuSelector": {"names": [noisy]}}))
    job = wait_job(api, namespace, "cut-noisy", timeout=300)
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    result = status["result"]
    assert result["path"] == "Distributed" and result["qpus"] == [noisy], result
    (report,) = result["mitigation"]
    assert report["level"] == "Readout" and report["techniques"] == ["tensoredReadoutInverse"]
    assert noisy in (report["calibration"] or ""), report
    for ev, want in zip(result["expectationValues"], exact(GHZ6, GHZ6_OBSERVABLES),
                        strict=True):
        assert "readout-corrected" in ev["method"], ev
        total = math.hypot(ev["stdError"], ev["systematicError"])
        assert abs(ev["value"] - want) <= 3 * total, (ev, want)
    assert all("measured.json" in out.data
               for out in _result_configmaps(core, namespace, "cut-noisy"))
    verified = condition(job, "Verified")
    assert verified is not None and verified["reason"] in ("WithinReportedUncertainty",
                                                           "UncertaintyTooLarge"), verified
