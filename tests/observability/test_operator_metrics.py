"""``/metrics`` of a real ``qbackbone operator`` running jobs on the real control plane: the
decision, finish, deadline and failure counters, the jobs and QPU gauges, a text that
prometheus_client parses, JSON log lines naming the job; and no double count after a restart."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from qbackbone.dev.waiting import wait_for
from tests.observability.conftest import Metered
from tests.operator.kit import G, V, create, policy, quantum_job, wait_job

pytestmark = pytest.mark.cluster

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
h q[0];
cx q[0], q[1];
"""


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class Sampler(threading.Thread):
    """Scrapes every 0.25 s while jobs run; keeps the largest value of each series."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.peak = url, {}  # type: ignore[var-annotated]
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.25):
            for key, value in scrape(self.url).items():
                self.peak[key] = max(value, self.peak.get(key, value))


def test_jobs_decisions_deadlines_and_qpus_on_metrics(metered: Metered) -> None:
    api, namespace, metered_operator = metered.api, metered.namespace, metered.operator
    metered_fleet = metered.qpus
    url = metered_operator.metrics_url
    wait_for(lambda: all(get(scrape(url), "qbackbone_qpu_ready", qpu=q) == 1
                         for q in metered_fleet), 30, what="qbackbone_qpu_ready of both QPUs")
    before = scrape(url)
    create(api, namespace, policy("fast", scheduler={"iterations": 10}))
    jobs = {
        "q1": quantum_job("q1", BELL, ["ZZ", "XX"], shots=2000, policyRef={"name": "fast"},
                          execution={"mode": "SingleQPU"}, deadline="10m"),
        "q2": quantum_job("q2", BELL, ["ZZ"], shots=2000, policyRef={"name": "fast"},
                          execution={"mode": "SingleQPU"}),
        "q3": quantum_job("q3", BELL, None, shots=1000, policyRef={"name": "fast"},
                          execution={"mode": "SingleQPU"}),
        "cl": quantum_job("cl", BELL, ["ZZ"], execution={"mode": "Classical"}),
        "bad": quantum_job("bad", "this is not a circuit", ["ZZ"]),
        "nopolicy": quantum_job("nopolicy", BELL, ["ZZ"], policyRef={"name": "absent"}),
        "late": quantum_job("late", BELL, ["ZZ"], deadline="1ms"),
    }
    sampler = Sampler(url)
    sampler.start()
    for body in jobs.values():
        create(api, namespace, body)
    try:
        done = {name: wait_job(api, namespace, name) for name in jobs}
    finally:
        sampler.done.set()
        sampler.join(5)
    phases = {name: job["status"]["phase"] for name, job in done.items()}
    assert phases == {"q1": "Succeeded", "q2": "Succeeded", "q3": "Succeeded",
                      "cl": "Succeeded", "bad": "Failed", "nopolicy": "Failed",
                      "late": "Failed"}, {n: j["status"].get("conditions") for n, j in done.items()}
    reasons = {name: next(c["reason"] for c in done[name]["status"]["conditions"]
                          if c["type"] == "Failed") for name in ("bad", "nopolicy", "late")}

    def delta(samples: Samples, name: str, **labels: str) -> float:
        return get(samples, name, **labels) - get(before, name, **labels)

    def settled() -> Samples | None:  # the jobs gauge follows the watch: wait for it
        now = scrape(url)
        ok = get(now, "qbackbone_jobs", namespace=namespace, phase="Succeeded",
                 path="SingleQPU") == 3
        return now if ok else None

    after: Samples = wait_for(settled, 30, what="qbackbone_jobs to show the finished jobs")
    assert delta(after, "qbackbone_qip_decisions_total", path="SingleQPU",
                 reason="QuantumSelected") == 3
    assert delta(after, "qbackbone_qip_decisions_total", path="Classical",
                 reason="ClassicalSelected") == 1
    assert delta(after, "qbackbone_scheduler_decision_seconds_count") == 4
    assert delta(after, "qbackbone_scheduler_decision_seconds_sum") > 0
    assert delta(after, "qbackbone_job_duration_seconds_count", path="SingleQPU") == 3
    assert delta(after, "qbackbone_job_duration_seconds_count", path="Classical") == 1
    assert delta(after, "qbackbone_job_deadline_total", outcome="met") == 1
    assert delta(after, "qbackbone_job_deadline_total", outcome="missed") == 1
    for reason in reasons.values():
        assert delta(after, "qbackbone_job_failures_total", reason=reason) >= 1, reason
    assert sorted(reasons.values()) == ["DeadlineExceeded", "PolicyNotFound", "UnknownGate"]
    assert get(after, "qbackbone_jobs", namespace=namespace, phase="Succeeded",
               path="Classical") == 1
    assert get(after, "qbackbone_jobs", namespace=namespace, phase="Failed", path="None") == 3
    assert get(after, "qbackbone_jobs", namespace=namespace, phase="Running",
               path="SingleQPU") == 0  # seen while the jobs ran, kept at 0
    assert get(sampler.peak, "qbackbone_jobs", namespace=namespace, phase="Running",
               path="SingleQPU") >= 1

    # The QPU gauges are the QPUNodes' status, as kubectl shows it.
    custom = client.CustomObjectsApi(api)

    def mirrored() -> bool:
        samples = scrape(url)
        for qpu in metered_fleet:
            obj: Any = custom.get_cluster_custom_object(G, V, "qpunodes", qpu)
            status: dict[str, Any] = obj.get("status") or {}
            if get(samples, "qbackbone_qpu_queue_depth", qpu=qpu) != status.get("queueDepth", 0) \
                    or abs(get(samples, "qbackbone_qpu_utilisation_ratio", qpu=qpu)
                           - status.get("utilisation", 0.0)) > 1e-9 \
                    or get(samples, "qbackbone_qpu_ready", qpu=qpu) != 1:
                return False
        return True

    wait_for(mirrored, 30, what="QPU gauges equal to the QPUNode status")

    # JSON logs: every line an object; the jobs' lines name them.
    records = [json.loads(line) for line in metered_operator.log.read_text().splitlines()
               if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    named = {r.get("job") for r in records if r.get("namespace") == namespace}
    assert {"q1", "cl", "bad"} <= named, sorted(str(n) for n in named)

    # A restart sees the finished jobs again but counts none of them.
    metered_operator.stop()
    metered_operator.start()
    restarted: Samples = wait_for(settled, 30, what="the restarted operator's jobs gauge")
    assert get(restarted, "qbackbone_qip_decisions_total", path="SingleQPU",
               reason="QuantumSelected") == 0
    assert get(restarted, "qbackbone_job_duration_seconds_count", path="SingleQPU") == 0
    assert get(restarted, "qbackbone_job_deadline_total", outcome="met") == 0
    assert get(restarted, "qbackbone_jobs", namespace=namespace, phase="Failed",
               path="None") == 3
