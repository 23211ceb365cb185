"""Print the device medians behind ``generator.DEVICES`` from qiskit-ibm-runtime's fake backends.

    python benchmarks/scheduler/derive_fleet.py

Medians over qubits (T1, T2, readout duration) and over couplers (two-qubit gate error and
duration) of each backend's offline calibration, plus its default repetition delay; compare
with the table in ``operator/qbackbone/core/scheduling/generator.py``.
"""

from __future__ import annotations

import statistics

from qiskit_ibm_runtime import fake_provider

BACKENDS = {
    "manila": "FakeManilaV2", "jakarta": "FakeJakartaV2", "guadalupe": "FakeGuadalupeV2",
    "kolkata": "FakeKolkataV2", "sherbrooke": "FakeSherbrooke", "torino": "FakeTorino",
    "kyiv": "FakeKyiv", "brisbane": "FakeBrisbane",
}


def main() -> None:
    print("name qubits gate e2q t2q(s) t_readout(s) T1(s) T2(s) rep_delay(s)")
    for name, cls in BACKENDS.items():
        b = getattr(fake_provider, cls)()
        gate = next(g for g in ("ecr", "cz", "cx") if g in b.target.operation_names)
        props = [p for p in b.target[gate].values() if p is not None and p.error is not None]
        readout = [p.duration for p in b.target["measure"].values() if p and p.duration]
        qp = [b.qubit_properties(i) for i in range(b.num_qubits)]
        print(name, b.num_qubits, gate,
              f"{statistics.median(p.error for p in props):.4g}",
              f"{statistics.median(p.duration for p in props):.4g}",
              f"{statistics.median(readout):.4g}",
              f"{statistics.median(q.t1 for q in qp if q.t1):.4g}",
              f"{statistics.median(q.t2 for q in qp if q.t2):.4g}",
              getattr(b.configuration(), "default_rep_delay", None))


if __name__ == "__main__":
    main()
