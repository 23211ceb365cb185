"""One reconcile of a QuantumJob against the cluster: decide and dispatch, then collect.

Level-based: every call reads what exists (the decision record, fragment pods, result
ConfigMaps), creates what is missing, and writes the status once when it changed. The
controller calls it from a timer and posts the returned events after the status write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.manifests import ManifestError
from qbackbone.api.policy import DEFAULT_POLICY_NAME
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.core.circuits.serialize import circuits_to_b64
from qbackbone.core.pipeline import (
    DecidedJob,
    FragmentWork,
    finish_classical,
    finish_single_qpu,
    guarded,
    plan_single_qpu,
    run_job,
)
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.k8s import JOBS
from qbackbone.k8s.builders import (
    JobRef,
    WorkerConfig,
    build_classical_pod,
    build_configmap,
    build_fragment_pod,
    classical_input_data,
    fragment_input_data,
)
from qbackbone.k8s.codec import TooLarge, check_size
from qbackbone.k8s.decision import DecisionRecord
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.names import (
    LABEL_JOB,
    classical_name,
    decision_name,
    fragment_name,
    input_name,
    result_name,
)
from qbackbone.k8s.objects import (
    job_from_body,
    policies,
    qpunodes,
    read_fleet,
    read_policies,
    trimmed,
)
from qbackbone.k8s.results import classical_outcome, fragment_counts, seconds
from qbackbone.k8s.status import TERMINAL, failed_job_status, write_status
from qbackbone.observability import metrics

log = logging.getLogger(__name__)

IN_PROCESS_NOTE = ("ran in the operator process: fragment pods for cut jobs are not built yet "
                   "(issue 8)")


class Retry(Exception):
    """Not an error: the job waits for something (e.g. QPUNodes being validated)."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True)
class Event:
    """A Kubernetes event to post about the job."""

    type: str
    reason: str
    message: str


@dataclass
class Unit:
    """One pod's worth of work: a fragment on a QPU or the classical fallback."""

    pod: dict[str, Any]
    input: dict[str, Any]
    result: str
    qpu: str | None


@dataclass
class Active:
    """A decided job being executed: kept in memory, re-derived after a restart."""

    stamp: str
    record: DecisionRecord
    decided: DecidedJob
    units: list[Unit] = field(default_factory=list)


class _LogProgress:
    def __init__(self, job: str) -> None:
        self.job = job

    def step(self, phase: str, message: str) -> None:
        log.info("%s: %s: %s", self.job, phase, message)


class JobReconciler:
    """Reconciles QuantumJobs; one instance per operator, kept in kopf's memo."""

    def __init__(self, kube: Kube, worker: WorkerConfig, seed: int | None = None) -> None:
        self.kube = kube
        self.worker = worker
        self.seed = seed
        self.active: dict[str, Active] = {}

    # -- entry point -------------------------------------------------------------------------

    def reconcile(self, body: Mapping[str, Any]) -> list[Event]:
        """Move the job one step; returns the events to post (after the status write)."""
        meta = body["metadata"]
        ref = JobRef(meta["name"], meta["namespace"], meta["uid"])
        stored = body.get("status")
        if (stored or {}).get("phase") in TERMINAL:
            self.active.pop(ref.uid, None)
            return []
        try:
            job = job_from_body(body)
        except ManifestError as err:
            status = failed_job_status(Reason.INVALID_MANIFEST, str(err), meta.get("generation"))
            return self._write(ref, stored, status, [Event("Warning", "Failed", str(err))])
        found = self.kube.configmap(ref.namespace, decision_name(ref.name))
        if found is None:
            return self._decide(ref, job, body)
        return self._progress(ref, stored, found)

    # -- first step: decide, then create the decision record, input ConfigMaps and pods ------

    def _decide(self, ref: JobRef, job: QuantumJob, body: Mapping[str, Any]) -> list[Event]:
        stored = body.get("status")
        fleet = read_fleet(self.kube)
        if fleet.pending:
            raise Retry(f"waiting for QPUNode(s) {', '.join(fleet.pending)} to be validated", 1.0)
        view = read_policies(self.kube, ref.namespace)
        wanted = job.spec.policy_ref.name if job.spec.policy_ref else DEFAULT_POLICY_NAME
        if wanted in view.invalid:
            msg = f"InvocationPolicy {wanted!r} is not valid: {view.invalid[wanted]}"
            status = failed_job_status(Reason.INVALID_POLICY, msg, job.metadata.generation)
            return self._write(ref, stored, status, [Event("Warning", "Failed", msg)])
        record = DecisionRecord(job=trimmed(body), fleet=fleet.nodes,
                                policy=view.valid.get(wanted), now=datetime.now(UTC),
                                seed=self.seed)
        run = record.start(_LogProgress(ref.name))
        try:
            decided = record.decide(run)
        except Exception as err:
            status = guarded(run, _raiser(err))
            return self._write(ref, stored, status, [_failed_event(status)])
        qip = decided.qip
        generation = run.status.decision.policy_generation if run.status.decision else None
        events = [Event("Normal", "Decided", f"{qip.path}: {qip.message} (policy {wanted}, "
                        f"generation {generation})")]
        if qip.path == "Distributed":
            return self._run_in_process(ref, job, record, stored, events)
        active = Active(record.stamp, record, decided)
        try:
            active.units = self._units(ref, active)
            decision = build_configmap(ref, decision_name(ref.name), "decision", record.to_data())
            check_size(decision["data"], "the decision record")
        except TooLarge as err:
            status = run.fail(Reason.INPUT_TOO_LARGE, str(err))
            return self._write(ref, stored, status, [*events, _failed_event(status)])
        if not self.kube.create(decision):
            return events  # another reconcile got there first; collect on the next tick
        self.active[ref.uid] = active
        events += self._ensure_pods(active.units)
        return self._write(ref, stored, run.status, events)

    def _run_in_process(self, ref: JobRef, job: QuantumJob, record: DecisionRecord,
                        stored: Mapping[str, Any] | None, events: list[Event]) -> list[Event]:
        named = {} if record.policy is None else {record.policy["metadata"]["name"]: record.policy}
        fleet = build_fleet(qpunodes(record.fleet))
        status = run_job(job, fleet, policies(named), _LogProgress(ref.name), record.seed,
                         record.now)
        for cond in status.conditions:
            if cond.type == ConditionType.EXECUTED:
                cond.message = f"{cond.message}; {IN_PROCESS_NOTE}"
        events.append(Event("Normal", "RanInProcess", f"Distributed job {IN_PROCESS_NOTE}"))
        return self._write(ref, stored, status, [*events, _final_event(status)])

    def _units(self, ref: JobRef, active: Active) -> list[Unit]:
        """Pods and input ConfigMaps for the decided path (TooLarge when an input won't fit)."""
        decided, record = active.decided, active.record
        if decided.qip.path == "Classical":
            reduced = decided.reduced
            name = classical_name(ref.name)
            data = classical_input_data(
                ref, name, circuits_to_b64([reduced.circuit]), reduced.observables,
                reduced.shots, decided.context.classical_method or "statevector", decided.seed)
            check_size(data, "the classical input")
            decided.run.status.phase = Phase.RUNNING
            return [Unit(build_classical_pod(ref, name, input_name(name), self.worker),
                         build_configmap(ref, input_name(name), "input", data),
                         result_name(name), None)]
        nodes = {n["metadata"]["name"]: n for n in record.fleet}
        units = []
        for work in plan_single_qpu(decided):
            units.append(self._fragment_unit(ref, nodes[work.qpu], work, decided.seed))
        return units

    def _fragment_unit(self, ref: JobRef, node: dict[str, Any], work: FragmentWork,
                       seed: int | None) -> Unit:
        name = fragment_name(ref.name, work.qpu)
        data = fragment_input_data(ref, name, node, work.shots, seed,
                                   circuits_to_b64(work.circuits))
        check_size(data, f"the input of the fragment on {work.qpu}")
        selector = (node.get("spec") or {}).get("nodeSelector")
        return Unit(build_fragment_pod(ref, name, input_name(name), work.qpu, self.worker,
                                       selector),
                    build_configmap(ref, input_name(name), "input", data, work.qpu),
                    result_name(name), work.qpu)

    def _ensure_pods(self, units: list[Unit]) -> list[Event]:
        events = []
        for unit in units:
            self.kube.create(unit.input)
            if self.kube.create(unit.pod):
                where = f" on QPU {unit.qpu}" if unit.qpu else " (classical fallback)"
                events.append(Event("Normal", "Created",
                                    f"pod {unit.pod['metadata']['name']}{where}"))
        return events

    # -- later steps: wait for results, then finish ---------------------------------------------

    def _progress(self, ref: JobRef, stored: Mapping[str, Any] | None,
                  data: Mapping[str, str]) -> list[Event]:
        active = self.active.get(ref.uid)
        events: list[Event] = []
        if active is None or active.stamp != data.get("now"):
            record = DecisionRecord.from_data(data)
            run = record.start(_LogProgress(ref.name))
            try:
                decided = record.decide(run)
                active = Active(record.stamp, record, decided)
                active.units = self._units(ref, active)
            except Exception as err:  # the record no longer decides: say so, do not loop
                status = run.fail(Reason.INTERNAL_ERROR,
                                  f"could not re-derive the recorded decision: {err}")
                return self._write(ref, stored, status, [_failed_event(status)])
            self.active[ref.uid] = active
            events.append(Event("Normal", "Resumed", "re-derived the recorded decision"))
        run = active.decided.run
        pods = self.kube.pods(ref.namespace, {LABEL_JOB: ref.name[:63]})
        results = self.kube.configmaps(ref.namespace, {LABEL_JOB: ref.name[:63]})
        missing = []
        for unit in active.units:
            if unit.result in results:
                continue
            pod: Any = pods.get(unit.pod["metadata"]["name"])
            phase = pod.status.phase if pod is not None and pod.status is not None else None
            if phase in ("Failed", "Succeeded"):
                msg = (f"pod {pod.metadata.name} failed: {_termination(pod)}" if phase == "Failed"
                       else f"pod {pod.metadata.name} succeeded without writing {unit.result}")
                status = run.fail(Reason.EXECUTION_FAILED, msg)
                self.active.pop(ref.uid, None)
                return self._write(ref, stored, status, [*events, _failed_event(status)])
            missing.append(unit)
        if missing:
            absent = [u for u in missing if u.pod["metadata"]["name"] not in pods]
            events += self._ensure_pods(absent)
            return self._write(ref, stored, run.status, events)
        status = self._finish(active, {u.result: results[u.result] for u in active.units})
        self.active.pop(ref.uid, None)
        events.append(Event("Normal", "Executed", f"{len(active.units)} pod(s) completed"))
        return self._write(ref, stored, status, [*events, _final_event(status)])

    def _finish(self, active: Active, results: Mapping[str, Mapping[str, str]]) -> QuantumJobStatus:
        decided, run = active.decided, active.decided.run
        if decided.qip.path == "Classical":
            data = next(iter(results.values()))
            status = guarded(run, lambda: finish_classical(decided, classical_outcome(data)))
        else:
            counts = {u.qpu: fragment_counts(results[u.result]) for u in active.units if u.qpu}
            status = guarded(run, lambda: finish_single_qpu(decided, counts))
        if status.timings is not None:
            status.timings.execute_seconds = round(max(seconds(d) for d in results.values()), 4)
            status.timings.total_seconds = round(
                (datetime.now(UTC) - active.record.now).total_seconds(), 4)
        return status

    # -- the one status write per reconcile ----------------------------------------------------

    def _write(self, ref: JobRef, stored: Mapping[str, Any] | None, status: QuantumJobStatus,
               events: list[Event]) -> list[Event]:
        start = time.perf_counter()
        written = write_status(self.kube, JOBS, ref.namespace, ref.name, stored, status)
        if written:
            metrics.job_status_written(ref.uid, stored, status)  # decisions, finishes
            log.debug("%s/%s: status written in %.3fs", ref.namespace, ref.name,
                      time.perf_counter() - start)
        return events


def _raiser(err: Exception) -> Any:
    def step() -> QuantumJobStatus:
        raise err
    return step


def _failed_reason(status: QuantumJobStatus) -> tuple[str, str]:
    for cond in status.conditions:
        if cond.type == ConditionType.FAILED and cond.status == "True":
            return cond.reason, cond.message
    return "Failed", ""


def _failed_event(status: QuantumJobStatus) -> Event:
    reason, message = _failed_reason(status)
    return Event("Warning", "Failed", f"{reason}: {message}")


def _final_event(status: QuantumJobStatus) -> Event:
    if status.phase == Phase.SUCCEEDED:
        passed = status.verification.passed if status.verification else None
        path = status.result.path if status.result else "?"
        return Event("Normal", "Succeeded", f"{path} result, verification passed: {passed}")
    return _failed_event(status)


def _termination(pod: Any) -> str:
    for cs in (pod.status.container_statuses or []):
        term = cs.state.terminated if cs.state else None
        if term is not None:
            text = (term.message or "").strip()
            return f"exit code {term.exit_code}: {text[-500:]}" if text else \
                f"exit code {term.exit_code} ({term.reason})"
    return pod.status.reason or pod.status.message or "unknown"

