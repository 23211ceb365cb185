"""Executors: run a fragment's circuits as one backend call (counts per circuit), and on noisy
QPUs estimate expectation values with error mitigation."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.primitives import BackendSamplerV2
from qiskit.quantum_info import SparsePauliOp
from qiskit_aer import AerSimulator

from qbackbone.api.conditions import Reason
from qbackbone.core.errors import JobFailure
from qbackbone.core.mitigation.estimator import RawEstimate, run_estimator
from qbackbone.core.mitigation.plan import MitigationPlan

Shots = int | Sequence[int]
"""One shot count for every circuit, or one per circuit."""


class Executor(Protocol):
    """Runs circuits (already transpiled for the QPU) in one backend call."""

    def run(self, circuits: Sequence[QuantumCircuit], shots: Shots, seed: int | None) -> list[
        dict[str, int]
    ]:
        """Counts of each circuit, keys over all its clbits, clbit 0 rightmost."""
        ...


@runtime_checkable
class EstimatingExecutor(Executor, Protocol):
    """A noisy QPU that can also estimate expectation values with error mitigation."""

    def estimate(self, circuit: QuantumCircuit, observables: Sequence[SparsePauliOp], shots: int,
                 seed: int | None, plan: MitigationPlan) -> list[RawEstimate]:
        """One Estimator call: the raw (mitigated) estimate of each observable."""
        ...


def derive_seed(seed: int | None, *labels: object) -> int | None:
    """A seed of its own for each call and label, reproducible from the job's seed.

    Aer starts every call (and every shot-count group of a sampler call) at the seed it is
    given, so two calls with one seed draw the same samples: QPU strata or cut subcircuits
    would be correlated and their standard errors wrong.
    """
    if seed is None:
        return None
    digest = hashlib.sha256(repr((seed, *labels)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def run_by_shot_count(
    sample: Callable[[list[tuple[Any, ...]], int | None], list[dict[str, int]]],
    circuits: Sequence[QuantumCircuit], shots: Shots, seed: int | None,
) -> list[dict[str, int]]:
    """Run every circuit with its own shot count; counts come back in circuit order.

    Unseeded, all PUBs go in one sampler run (one backend call). Seeded, there is one run per
    distinct shot count, each with its own derived seed: a sampler gives every shot-count
    group the seed it was given, which would make those groups draw the same samples.
    """
    per_circuit = [shots] * len(circuits) if isinstance(shots, int) else list(shots)
    if len(per_circuit) != len(circuits):
        raise ValueError(f"{len(per_circuit)} shot counts for {len(circuits)} circuits")
    if any(n <= 0 for n in per_circuit):
        raise ValueError("every circuit needs a positive shot count")
    if seed is None:
        return sample([(c, None, n) for c, n in zip(circuits, per_circuit, strict=True)], None)
    counts: list[dict[str, int]] = [{} for _ in circuits]
    for n in sorted(set(per_circuit)):
        picked = [i for i, m in enumerate(per_circuit) if m == n]
        results = sample([(circuits[i], None, n) for i in picked], derive_seed(seed, "shots", n))
        for i, c in zip(picked, results, strict=True):
            counts[i] = c
    return counts


def _counts_from_sampler(result: Any) -> list[dict[str, int]]:
    return [dict(pub.join_data().get_counts()) for pub in result]


def embed(circuit: QuantumCircuit, device_qubits: int, region: Sequence[int]) -> QuantumCircuit:
    """Place a circuit over ``region`` of a device (an ISA circuit for the full device)."""
    wide = QuantumCircuit(QuantumRegister(device_qubits, "q"), *circuit.cregs,
                          name=circuit.name)
    loose = [c for c in circuit.clbits if not circuit.find_bit(c).registers]
    if loose:
        wide.add_register(ClassicalRegister(len(loose), "loose"))
    wide.compose(circuit, qubits=list(region), clbits=wide.clbits[: circuit.num_clbits],
                 inplace=True)
    return wide

class AerExecutor:
    """Qiskit Aer directly, ideal."""

    def __init__(self, method: str = "automatic") -> None:
        self.simulator = AerSimulator(method=method)

    def run(self, circuits: Sequence[QuantumCircuit], shots: Shots, seed: int | None) -> list[
        dict[str, int]
    ]:
        """Run all circuits in one call."""

        def sample(pubs: list[tuple[Any, ...]], call_seed: int | None) -> list[dict[str, int]]:
            options = {"seed_simulator": call_seed} if call_seed is not None else None
            sampler = BackendSamplerV2(backend=self.simulator, options=options)
            return _counts_from_sampler(sampler.run(pubs).result())

        return run_by_shot_count(sample, circuits, shots, seed)


class RegionExecutor:
    """A fake device's calibrated noise on the QPU's region (``region.region_simulator``).

    Counts come from qiskit-ibm-runtime's executor-based Sampler (``fake`` QPUs) or from Aer's
    own sampler (``aer`` QPUs with ``noiseFrom``); mitigated expectation values from the
    executor-based Estimator for both. Circuits are compiled for the region, so nothing is
    embedded in the full device: Aer never sizes a run by the device's 100+ qubits.
    """

    def __init__(self, device: str, region: Sequence[int], runtime_sampler: bool,
                 method: str = "automatic") -> None:
        self.device = device
        self.region = tuple(region)
        self.runtime_sampler = runtime_sampler
        self.method = method

    def _simulator(self, active: Sequence[int], circuits: Sequence[QuantumCircuit]
                   ) -> AerSimulator:
        """The noise of the region's ``active`` qubits only (see ``compact_circuit``); shot
        branching only when no circuit measures mid-circuit (``region_simulator``)."""
        from qbackbone.core.qpus.region import measures_mid_circuit, region_simulator

        branching = not any(measures_mid_circuit(c) for c in circuits)
        return region_simulator(self.device, tuple(self.region[q] for q in active), self.method,
                                branching)

    def run(self, circuits: Sequence[QuantumCircuit], shots: Shots, seed: int | None) -> list[
        dict[str, int]
    ]:
        """Run all circuits in one sampler call per distinct shot count."""
        from qbackbone.core.qpus.region import active_qubits, compact_circuit

        active = active_qubits(circuits)
        simulator = self._simulator(active, circuits)
        circuits = [compact_circuit(c, active) for c in circuits]

        def sample(pubs: list[tuple[Any, ...]], call_seed: int | None) -> list[dict[str, int]]:
            if not self.runtime_sampler:
                options = {"seed_simulator": call_seed} if call_seed is not None else None
                return _counts_from_sampler(
                    BackendSamplerV2(backend=simulator, options=options).run(pubs).result())
            from qiskit_ibm_runtime.executor_sampler import Sampler

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                sampler = Sampler(mode=simulator)
                if call_seed is not None:
                    sampler.options.simulator.seed_simulator = call_seed
                return _counts_from_sampler(sampler.run(pubs).result())

        return run_by_shot_count(sample, circuits, shots, seed)

    def estimate(self, circuit: QuantumCircuit, observables: Sequence[SparsePauliOp], shots: int,
                 seed: int | None, plan: MitigationPlan) -> list[RawEstimate]:
        """Mitigated expectation values of observables laid out on the compiled circuit."""
        from qbackbone.core.qpus.region import active_qubits, compact_circuit, compact_observable

        active = active_qubits([circuit], observables)
        return run_estimator(self._simulator(active, [circuit]), compact_circuit(circuit, active),
                             [compact_observable(o, active) for o in observables], shots, seed,
                             plan, simulator=True)


class IBMRuntimeExecutor:
    """A real IBM backend through Qiskit Runtime (token from the credentials secret)."""

    TOKEN_ENV = "QB_IBM_TOKEN"
    TOKEN_FILE_ENV = "QB_IBM_TOKEN_FILE"

    def __init__(self, backend_name: str, instance: str | None, region: Sequence[int],
                 device_qubits: int) -> None:
        self.backend_name = backend_name
        self.instance = instance
        self.region = tuple(region)
        self.device_qubits = device_qubits

    @staticmethod
    def token() -> str:
        """The API token from $QB_IBM_TOKEN_FILE (a mounted secret) or $QB_IBM_TOKEN."""
        path = os.environ.get(IBMRuntimeExecutor.TOKEN_FILE_ENV)
        if path and os.path.exists(path):
            with open(path) as handle:
                return handle.read().strip()
        token = os.environ.get(IBMRuntimeExecutor.TOKEN_ENV)
        if not token:
            raise JobFailure(
                Reason.BACKEND_UNAVAILABLE,
                f"ibm-runtime needs a token: set {IBMRuntimeExecutor.TOKEN_FILE_ENV} to the "
                f"mounted credentials secret or {IBMRuntimeExecutor.TOKEN_ENV}",
            )
        return token

    def _backend(self) -> Any:
        from qiskit_ibm_runtime import QiskitRuntimeService

        service = QiskitRuntimeService(channel="ibm_quantum_platform", token=self.token(),
                                       instance=self.instance)
        return service.backend(self.backend_name)

    def run(self, circuits: Sequence[QuantumCircuit], shots: Shots, seed: int | None) -> list[
        dict[str, int]
    ]:
        """Submit all circuits as one Sampler job and wait for it."""
        from qiskit_ibm_runtime.executor_sampler import Sampler

        backend = self._backend()
        wide = [embed(c, self.device_qubits, self.region) for c in circuits]

        def sample(pubs: list[tuple[Any, ...]], _seed: int | None) -> list[dict[str, int]]:
            return _counts_from_sampler(Sampler(mode=backend).run(pubs).result())

        return run_by_shot_count(sample, wide, shots, seed)

    def estimate(self, circuit: QuantumCircuit, observables: Sequence[SparsePauliOp], shots: int,
                 seed: int | None, plan: MitigationPlan) -> list[RawEstimate]:
        """Mitigated expectation values through the executor Estimator on the real backend."""
        wide = embed(circuit, self.device_qubits, self.region)
        laid = [o.apply_layout(list(self.region), num_qubits=self.device_qubits)
                for o in observables]
        return run_estimator(self._backend(), wide, laid, shots, seed, plan, simulator=False)
