"""A Distributed job (a GHZ circuit wider than every QPU, cut with one LOCC wire) runs as
fragment pods: the preparation subcircuit's pods are created with a scheduling gate and start
only after the measurement subcircuit's pods have finished and written their results.

The joint plan splits a subcircuit's shots over QPUs only when the job's deadline needs it, so
the tests that want each subcircuit on two QPUs run on the slow pair (``slow_pair``) with a
deadline no unsplit plan meets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from tests.operator.kit import PodWatch, condition, create, quantum_job, wait_job
from tests.operator.test_jobs import exact

pytestmark = pytest.mark.cluster

WIDTH = 10  # the session's QPUNodes have 8 qubits: one LOCC wire cut splits it
GHZ = ('OPENQASM 2.0;\ninclude "qelib1.inc";\n' + f"qreg q[{WIDTH}];\nh q[0];\n"
       + "".join(f"cx q[{i}],q[{i + 1}];\n" for i in range(WIDTH - 1)))
GHZ_OBSERVABLES = ["ZZ" + "I" * (WIDTH - 2), "Z" + "I" * (WIDTH - 2) + "Z", "X" * WIDTH]


# On the slow pair each subcircuit's 36,000 shots take 36 s on one QPU, 18 s on two: only
# both subcircuits split over both QPUs (36.1 s in all) meet it; real runs take seconds.
SPLIT_DEADLINE = "45s"


def ghz_job(name: str, **spec: Any) -> dict[str, Any]:
    """The GHZ job every distributed test runs (2000 shots; the LOCC overhead multiplies)."""
    return quantum_job(name, GHZ, GHZ_OBSERVABLES, shots=2000, **spec)


def split_ghz_job(name: str, qpus: tuple[str, ...]) -> dict[str, Any]:
    """The GHZ job on ``qpus`` (the slow pair) with a deadline that splits every subcircuit."""
    return ghz_job(name, deadline=SPLIT_DEADLINE,
                   execution={"qpuSelector": {"names": list(qpus)}})


def check_ghz_values(job: dict[str, Any]) -> None:
    """Succeeded, Distributed, verified, each value within 4 standard errors of exact."""
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    assert status["decision"]["path"] == "Distributed"
    assert status["result"]["path"] == "Distributed"
    assert status["verification"]["passed"] is True
    for ev, want in zip(status["result"]["expectationValues"], exact(GHZ, GHZ_OBSERVABLES),
                        strict=True):
        assert abs(ev["value"] - want) <= 4 * ev["stdError"] + 1e-9, (ev, want)


def fragment_pods(core: client.CoreV1Api, namespace: str, job: str) -> list[Any]:
    """The job's fragment pods once all have finished (the agent reports after the worker
    process exits, a moment after the result ConfigMap exists)."""

    def finished() -> list[Any]:
        pods = core.list_namespaced_pod(
            namespace, label_selector=f"qbackbone.io/job={job},qbackbone.io/role=fragment").items
        return pods if all(p.status.phase in ("Succeeded", "Failed") for p in pods) else []

    found: list[Any] = wait_for(finished, 30, what=f"{job}'s fragment pods finished")
    return found


def _time(value: Any) -> datetime:
    assert value is not None
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def test_locc_job_runs_as_gated_pods_in_precedence_order(api: client.ApiClient, namespace: str,
                                                         slow_pair: tuple[str, ...],
                                                         core: client.CoreV1Api,
                                                         pod_watch: PodWatch) -> None:
    fleet = slow_pair
    create(api, namespace, split_ghz_job("ghz", fleet))
    job = wait_job(api, namespace, "ghz", timeout=180)
    check_ghz_values(job)
    status = job["status"]
    assert condition(job, "Scheduled")["reason"] == "Admitted"  # type: ignore[index]
    subs = {s["name"]: s for s in status["plan"]["subcircuits"]}
    prepare = {n for n, s in subs.items() if s.get("dependsOn")}
    measure = set(subs) - prepare
    assert len(subs) == 2 and len(prepare) == 1, subs
    assert {q for f in status["plan"]["fragments"] for q in [f["qpu"]]} == set(fleet)
    assert set(status["result"]["qpus"]) == set(fleet)

    pods = fragment_pods(core, namespace, "ghz")
    # One pod per (subcircuit, QPU): each subcircuit's shots are split over both QPUs.
    by_sub: dict[str, list[Any]] = {}
    for pod in pods:
        by_sub.setdefault(pod.metadata.labels["qbackbone.io/subcircuit"], []).append(pod)
    assert {s: len(p) for s, p in by_sub.items()} == {s: len(fleet) for s in subs}
    assert all(p.status.phase == "Succeeded" for p in pods)
    assert all(n == 1 for n in pod_watch.added.values()), pod_watch.added  # none re-created
    for pod in pods:  # created gated exactly when it prepares states measured elsewhere
        first = pod_watch.first[pod.metadata.name]
        gates = [g.name for g in first.spec.scheduling_gates or []]
        sub = pod.metadata.labels["qbackbone.io/subcircuit"]
        assert gates == (["qbackbone.io/precedence"] if sub in prepare else []), (sub, gates)
        assert not pod.spec.scheduling_gates  # released

    # Precedence in the pods' actual times: container start (node agent, seconds) and the
    # backend calls the workers recorded (Unix seconds, microseconds).
    def term(pod: Any) -> Any:
        return pod.status.container_statuses[0].state.terminated

    # Container times are whole seconds, and a measurement container exits just after it
    # writes its result (which is what releases the gate): allow one second; the backend
    # calls below are the exact check.
    measured_end = max(_time(term(p).finished_at) for s in measure for p in by_sub[s])
    prepared_start = min(_time(term(p).started_at) for s in prepare for p in by_sub[s])
    assert prepared_start >= measured_end - timedelta(seconds=1), (prepared_start, measured_end)
    results = core.list_namespaced_config_map(
        namespace, label_selector="qbackbone.io/job=ghz,qbackbone.io/role=result").items
    assert len(results) == len(pods)  # one result per fragment
    calls = {cm.data["pod"]: (float(cm.data["started"]), float(cm.data["finished"]))
             for cm in results}
    assert max(calls[p.metadata.name][1] for s in measure for p in by_sub[s]) < \
        min(calls[p.metadata.name][0] for s in prepare for p in by_sub[s])
    reasons = [e.reason for e in core.list_namespaced_event(namespace).items
               if e.involved_object.name == "ghz"]
    assert reasons.count("Released") == len(fleet), reasons
    assert condition(job, "DeadlineMet")["status"] == "True"  # type: ignore[index]
    assert "RanInProcess" not in reasons
