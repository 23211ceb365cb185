"""Issue 14 for QPUs and shot counts: hostile QPUNodes, useless fleets and absurd precisions.

A QPUNode that does not validate stops `qbackbone run` (exit 2) with InvalidManifest naming
the field; a fleet that cannot take a job fails that job with a specific reason; a precision
whose shot count is beyond the limit fails with InvalidShots. Never InternalError, and every
status is strict JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from qiskit.circuit.library import CXGate, Measure, SXGate
from qiskit.providers import QubitProperties
from qiskit.transpiler import InstructionProperties, Target

import qbackbone.cli.summary  # noqa: F401  (bind its default stderr now, not to one test's capsys)
from qbackbone.api.common import ObjectMeta
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.cli.main import main
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.descriptor import calibration_from_target
from qbackbone.core.qpus.fidelity import derive_max_depth
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import make_qpu

GHZ = ('OPENQASM 2.0; include "qelib1.inc"; qreg q[4]; h q[0]; cx q[0],q[1]; cx q[1],q[2]; '
       "cx q[2],q[3];")
NO_FALLBACK = {"default": InvocationPolicy(metadata=ObjectMeta(name="default"),
                                           spec={"fallback": {"enabled": False}})}
GOOD_JOB = f"""apiVersion: qbackbone.io/v1alpha1
kind: QuantumJob
metadata: {{name: ghz}}
spec:
  circuit:
    qasm: '{GHZ}'
    observables: [ZZII, XXXX]
  shots: 500
"""


def ghz_job(**spec: Any) -> QuantumJob:
    return QuantumJob.model_validate({"metadata": {"name": "ghz"}, "spec": {
        "circuit": {"qasm": GHZ, "observables": ["ZZII"]}, **spec}})


def assert_failed(status: QuantumJobStatus, reason: str, *named: str) -> None:
    """Failed with this reason, a message naming every string in ``named``, strict JSON."""
    json.dumps(status.to_wire(), allow_nan=False)
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert status.phase == "Failed" and failed.reason == reason, failed
    for text in named:
        assert text in failed.message, failed.message


def qpunode(name: str, spec: str) -> str:
    return (f"apiVersion: qbackbone.io/v1alpha1\nkind: QPUNode\nmetadata: {{name: {name}}}\n"
            f"spec:\n  backend: {{provider: aer, name: aer_simulator}}\n{spec}")


@pytest.mark.parametrize(("spec", "field"), [
    ("  shotTime: .nan\n", "shotTime"), ("  shotTime: .inf\n", "shotTime"),
    ("  shotTime: -1\n", "shotTime"), ("  shotTime: 0\n", "shotTime"),
    ("  shotTime: 0s\n", "shotTime"), ("  shotTime: 2d\n", "shotTime"),
    ("  shotTime: 1e300\n", "shotTime"), ("  shotTime: nan\n", "shotTime"),
    ("  setupTime: .nan\n", "setupTime"), ("  setupTime: -1s\n", "setupTime"),
    ("  setupTime: 2d\n", "setupTime"), ("  setupTime: -.inf\n", "setupTime"),
    ("  qubits: 0\n", "qubits"), ("  qubits: 1000000000000\n", "qubits"),
    ("  maxDepth: 0\n", "maxDepth"), ("  maxDepth: 1.5\n", "maxDepth"),
])
def test_a_qpunode_out_of_range_stops_the_run_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, field: str) -> None:
    (tmp_path / "fleet.yaml").write_text(qpunode("bad", spec))
    (tmp_path / "job.yaml").write_text(GOOD_JOB)
    capsys.readouterr()
    assert main(["run", str(tmp_path), "-o", "json", "-q", "--no-isolation"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "InvalidManifest" in captured.err and f"spec.{field}" in captured.err, captured.err
    assert "Traceback" not in captured.err


def test_a_fleet_of_one_qubit_qpus_fails_a_wide_job_cleanly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`min() arg is an empty sequence` once came out of the cut planner for this fleet."""
    one_qubit = [make_qpu("one-a", qubits=1),
                 make_qpu("one-b", provider="fake", backend="fake_nairobi", qubits=1)]
    fleet = build_fleet(one_qubit)
    assert_failed(run_job(ghz_job(), fleet, NO_FALLBACK, seed=1), "CutInfeasible",
                  "one-a has 1 qubits")
    assert_failed(run_job(ghz_job(execution={"mode": "Distributed"}), fleet, {}, seed=1),
                  "CutInfeasible", "Distributed")
    assert_failed(run_job(ghz_job(execution={"mode": "SingleQPU"}), fleet, {}, seed=1),
                  "NoEligibleQPU", "qubitsFit 4 vs 1")
    status = run_job(ghz_job(), fleet, {}, seed=1)  # Auto with the fallback: classical
    assert status.phase == "Succeeded" and status.decision is not None
    assert status.decision.path == "Classical"
    # The same through `qbackbone run` with the fleet given as manifests.
    (tmp_path / "fleet.yaml").write_text(
        qpunode("one-a", "  qubits: 1\n") + "---\n"
        + qpunode("one-b", "  qubits: 1\n").replace("aer, name: aer_simulator",
                                                   "fake, name: fake_nairobi"))
    (tmp_path / "job.yaml").write_text(GOOD_JOB)
    capsys.readouterr()
    assert main(["run", str(tmp_path), "-o", "json", "-q", "--no-isolation"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"]["phase"] == "Succeeded"


def test_an_empty_or_unusable_fleet_fails_with_no_eligible_qpu() -> None:
    assert_failed(run_job(ghz_job(), [], NO_FALLBACK, seed=1), "NoEligibleQPU",
                  "no QPUs", "fallback")
    cordoned = build_fleet([make_qpu("off", qubits=8, cordoned=True)])
    assert_failed(run_job(ghz_job(), cordoned, NO_FALLBACK, seed=1), "NoEligibleQPU")


@pytest.mark.parametrize("precision", [1e-300, 1e-160, 1e-5, 5e-324])
def test_a_precision_beyond_the_shot_limit_fails_with_invalid_shots(precision: float) -> None:
    fleet = build_fleet([make_qpu("ideal", qubits=8)])
    assert_failed(run_job(ghz_job(precision=precision), fleet, {}, seed=1), "InvalidShots",
                  "spec.precision", "10,000,000")


def test_a_precision_within_the_limit_still_sets_the_shots() -> None:
    fleet = build_fleet([make_qpu("ideal", qubits=8)])
    status = run_job(ghz_job(precision=0.05), fleet, {}, seed=1)
    assert status.phase == "Succeeded", status.conditions
    assert status.result is not None and status.result.shots == 401  # 1/0.05^2 + 1


def test_non_finite_calibration_figures_are_treated_as_unknown() -> None:
    target = Target(num_qubits=2, qubit_properties=[
        QubitProperties(t1=math.nan, t2=-1.0), QubitProperties(t1=100e-6, t2=math.inf)])
    target.add_instruction(SXGate(), {(0,): InstructionProperties(error=math.nan, duration=35e-9),
                                      (1,): InstructionProperties(error=-0.1, duration=math.nan)})
    target.add_instruction(CXGate(), {(0, 1): InstructionProperties(error=math.inf,
                                                                    duration=-1.0)})
    target.add_instruction(Measure(), {(0,): InstructionProperties(error=2.0, duration=1e-6),
                                       (1,): InstructionProperties(error=0.02, duration=1e-6)})
    cal = calibration_from_target(target)
    assert cal.t1 == (None, 100e-6) and cal.t2 == (None, None)
    assert cal.gate_errors == {("measure", (1,)): 0.02}
    assert all(math.isfinite(d) and d >= 0 for d in cal.gate_durations.values())
    assert derive_max_depth(cal) is None  # no two-qubit error known: no derived limit
