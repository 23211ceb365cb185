"""A job is finished as soon as its last result is written (the result ConfigMap watch), not
at the next tick of the 1 s timer, and finished once: the timer and the trigger together
never finish, resume or announce it twice."""

from __future__ import annotations

from datetime import datetime
from functools import partial

import pytest
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from tests.operator.kit import condition, create, quantum_job, wait_job
from tests.operator.test_jobs import ENTANGLED, OBSERVABLES
from tests.operator.test_qpu_loss import events_of

pytestmark = pytest.mark.cluster

JOBS = 4
# From the last result's backend call ending to the job's finish: the worker creating the
# ConfigMap, the watch event, one reconcile: about 0.02 s measured. With the timer alone it
# is the wait for the next tick, 0.44 to 0.52 s measured (the ticks are phase-locked to the
# job's creation, and the results land 1.5 to 1.9 s after it).
LAG_BOUND = 0.2


def final_reasons(core: client.CoreV1Api, namespace: str, name: str) -> list[str] | None:
    """The job's event reasons once its Succeeded event is there."""
    reasons = [e.reason for e in events_of(core, namespace, name)]
    return reasons if "Succeeded" in reasons else None


def test_the_last_result_finishes_the_job_at_once(api: client.ApiClient, namespace: str,
                                                 fleet: tuple[str, ...],
                                                 core: client.CoreV1Api) -> None:
    lags = []
    for i in range(JOBS):
        name = f"prompt-{i}"
        create(api, namespace, quantum_job(name, ENTANGLED, OBSERVABLES, shots=1000,
                                           execution={"mode": "SingleQPU"}))
        job = wait_job(api, namespace, name, timeout=120)
        status = job["status"]
        assert status["phase"] == "Succeeded", condition(job, "Failed")
        decision = core.read_namespaced_config_map(f"{name}-decision", namespace).data
        finished_at = (datetime.fromisoformat(decision["now"]).timestamp()
                       + status["timings"]["totalSeconds"])
        results = core.list_namespaced_config_map(
            namespace, label_selector=f"qbackbone.io/job={name},qbackbone.io/role=result").items
        assert len(results) == len(status["result"]["qpus"]) >= 1
        last = max(float(r.data["finished"]) for r in results)
        lags.append(round(finished_at - last, 3))
        # Events are posted after the status write: wait for the final one, then count.
        reasons = wait_for(partial(final_reasons, core, namespace, name), 10,
                           what=f"{name}'s Succeeded event")
        assert reasons.count("Succeeded") == 1 and reasons.count("Executed") == 1, reasons
        assert "Resumed" not in reasons, reasons
    assert all(0 <= lag < LAG_BOUND for lag in lags), lags
