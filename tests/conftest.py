"""Shared test helpers: builders for API objects and paths to the real inputs in ../shared."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Pauli, Statevector

from qbackbone.api.qpunode import QPUNode
from qbackbone.api.quantumjob import QuantumJob

# The real control plane's fixtures, shared by tests/cluster and tests/operator.
pytest_plugins = ["tests.cluster.fixtures"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
QASMBENCH = SHARED / "qasmbench"


@pytest.fixture(scope="session", autouse=True)
def _private_job_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`qbackbone run` records every job in a history file (docs/learning-energy.md): the
    tests' runs go to a file of their own, never the user's ~/.local/state."""
    before = os.environ.get("QBACKBONE_HISTORY")
    os.environ["QBACKBONE_HISTORY"] = str(tmp_path_factory.mktemp("history") / "jobs.sqlite3")
    yield
    if before is None:
        os.environ.pop("QBACKBONE_HISTORY", None)
    else:
        os.environ["QBACKBONE_HISTORY"] = before


def make_job(qasm: str, observables: list[str] | None = None, name: str = "job",
             **spec: Any) -> QuantumJob:
    """A QuantumJob (MakeJob-style builder); sampling when no observables are given."""
    circuit: dict[str, Any] = {"qasm": qasm}
    if observables is None:
        circuit["sampling"] = True
    else:
        circuit["observables"] = observables
    return QuantumJob.model_validate({"apiVersion": "qbackbone.io/v1alpha1", "kind": "QuantumJob",
                                      "metadata": {"name": name},
                                      "spec": {"circuit": circuit, **spec}})


def make_qpu(name: str, provider: str = "aer", backend: str = "aer_simulator",
             **spec: Any) -> QPUNode:
    """A QPUNode builder."""
    return QPUNode.model_validate({"metadata": {"name": name},
                                   "spec": {"backend": {"provider": provider, "name": backend},
                                            **spec}})


@pytest.fixture(scope="session")
def qasmbench() -> Path:
    """The QASMBench circuits shipped in ../shared (they are real inputs: never skipped)."""
    assert QASMBENCH.is_dir(), f"{QASMBENCH} is missing: the shared inputs must sit beside the repo"
    return QASMBENCH


def ghz_circuit(width: int) -> QuantumCircuit:
    """H on qubit 0 and a CX chain: the GHZ state, unmeasured."""
    circuit = QuantumCircuit(width)
    circuit.h(0)
    for q in range(width - 1):
        circuit.cx(q, q + 1)
    return circuit


def exact_values(circuit: QuantumCircuit, observables: list[str]) -> list[float]:
    """Exact expectation values of Pauli strings (qubit 0 rightmost) on the circuit's state."""
    state = Statevector(circuit)
    return [float(state.expectation_value(Pauli(o)).real) for o in observables]
