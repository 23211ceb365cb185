"""A noisy fake QPU runs mid-circuit measurements faithfully and reproducibly (issue 15).

Aer's shot branching, on for speed, returns impossible outcomes for circuits that measure
mid-circuit under noise, different on each run with the same seed; cut fragments are such
circuits. The region simulator turns branching off for them.
"""

from __future__ import annotations

from qiskit import QuantumCircuit

from qbackbone.api.qpunode import QPUNode
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.core.qpus.region import measures_mid_circuit


def _perth():  # type: ignore[no-untyped-def]
    return build_fleet([QPUNode.model_validate(
        {"metadata": {"name": "perth"},
         "spec": {"backend": {"provider": "fake", "name": "fake_perth"}}})])[0]


def _ghz_read_twice() -> QuantumCircuit:
    """GHZ on 3 qubits; qubit 1 is read mid-circuit into clbit 3 and again at the end."""
    circuit = QuantumCircuit(3, 4)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure(1, 3)
    circuit.cx(1, 2)
    circuit.measure(range(3), range(3))
    return circuit


def test_mid_circuit_reads_agree_with_final_reads_and_repeat_with_the_seed() -> None:
    qpu = _perth()
    compiled = qpu.transpile([_ghz_read_twice()])
    first, second = (qpu.executor.run(compiled, 4000, 11)[0] for _ in range(2))
    assert first == second
    # The two reads of qubit 1 (clbits 3 and 1) differ only by readout and gate errors
    # (about 3 % each on fake_perth); the branching defect made a quarter of them differ.
    disagree = sum(n for key, n in first.items() if key[0] != key[2])
    assert disagree / 4000 < 0.12, first


def test_which_circuits_measure_mid_circuit() -> None:
    final = QuantumCircuit(2, 2)
    final.h(0)
    final.cx(0, 1)
    final.measure([0, 1], [0, 1])
    assert not measures_mid_circuit(final)
    assert measures_mid_circuit(_ghz_read_twice())
    conditioned = QuantumCircuit(2, 2)
    conditioned.measure(0, 0)
    with conditioned.if_test((conditioned.clbits[0], 1)):
        conditioned.x(1)
    assert measures_mid_circuit(conditioned)
