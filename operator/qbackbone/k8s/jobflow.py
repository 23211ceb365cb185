"""One reconcile of a QuantumJob against the cluster: decide and dispatch, then collect.

Level-based: every call reads what exists (the decision record, fragment pods, result
ConfigMaps), creates what is missing, and writes the status once when it changed. The
controller calls it from a timer and posts the returned events after the status write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.manifests import ManifestError
from qbackbone.api.policy import DEFAULT_POLICY_NAME
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.core.circuits.serialize import circuits_to_b64
from qbackbone.core.pipeline import (
    DecidedJob,
    finish_classical,
    guarded,
    plan_single_qpu,
)
from qbackbone.core.pipeline.distributed import plan_status
from qbackbone.k8s import JOBS
from qbackbone.k8s.builders import (
    JobRef,
    WorkerConfig,
    build_classical_pod,
    build_configmap,
    classical_input_data,
)
from qbackbone.k8s.codec import TooLarge, check_size
from qbackbone.k8s.decision import DecisionRecord
from qbackbone.k8s.dispatch import Dispatcher, QPUView, termination
from qbackbone.k8s.events import Event
from qbackbone.k8s.fragments import CutSource, FragmentSource, SingleSource, cut_plan
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.names import (
    LABEL_JOB,
    LABEL_ROLE,
    classical_name,
    cutplan_name,
    decision_name,
    input_name,
    result_name,
)
from qbackbone.k8s.objects import job_from_body, read_fleet, read_policies, trimmed
from qbackbone.k8s.results import classical_outcome, seconds
from qbackbone.k8s.status import TERMINAL, failed_job_status, write_status
from qbackbone.observability import metrics

__all__ = ["Event", "JobReconciler", "Retry"]

log = logging.getLogger(__name__)
QPU_VIEW_SECONDS = 5.0  # how old the QPUNode view may be (a fresh one before moving a fragment)


class Retry(Exception):
    """Not an error: the job waits for something (e.g. QPUNodes being validated)."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass
class Unit:
    """The classical fallback's pod and input ConfigMap."""

    pod: dict[str, Any]
    input: dict[str, Any]
    result: str


@dataclass
class Active:
    """A decided job being executed: kept in memory, re-derived after a restart."""

    stamp: str
    record: DecisionRecord
    decided: DecidedJob
    classical: Unit | None = None
    fragments: Dispatcher | None = None
    plan_data: dict[str, str] | None = None  # the cut plan record of a Distributed decision


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
        self.qpus = QPUView(kube, QPU_VIEW_SECONDS)

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
        active = Active(record.stamp, record, decided)
        try:
            self._prepare(ref, active, None)
            if active.fragments is not None:
                active.fragments.check_inputs()
            decision = build_configmap(ref, decision_name(ref.name), "decision", record.to_data())
            check_size(decision["data"], "the decision record")
            cutplan = None
            if active.plan_data is not None:
                cutplan = build_configmap(ref, cutplan_name(ref.name), "plan", active.plan_data)
                check_size(cutplan["data"], "the cut plan")
        except TooLarge as err:
            status = run.fail(Reason.INPUT_TOO_LARGE, str(err))
            return self._write(ref, stored, status, [*events, _failed_event(status)])
        except Exception as err:  # a refusal while planning (e.g. CutInfeasible) or a bug
            status = guarded(run, _raiser(err))
            return self._write(ref, stored, status, [*events, _failed_event(status)])
        if not self.kube.create(decision):
            return events  # another reconcile got there first; collect on the next tick
        if cutplan is not None:
            self.kube.create(cutplan)
        self.active[ref.uid] = active
        return self._advance(ref, stored, active, events)

    def _prepare(self, ref: JobRef, active: Active, plan_data: Mapping[str, str] | None) -> None:
        """Plan the decided path (deterministic from the record; a Distributed job's cut plan
        from ``plan_data`` when it was stored): the classical unit or the fragment dispatcher.
        Raises JobFailure when the job cannot run, TooLarge when an input would not fit."""
        decided, record = active.decided, active.record
        source: FragmentSource
        if decided.qip.path == "Distributed":
            plan, active.plan_data = cut_plan(decided, plan_data)
            if plan is not None:
                source = CutSource(decided, plan, record.stamp)
                with decided.run.phase("schedule_seconds"):
                    decided.run.status.plan = plan_status(
                        plan, [source.record(slot, None) for slot in source.slots])
                decided.run.status.phase = Phase.RUNNING
                active.fragments = self._dispatcher(ref, active, source)
                return
        if decided.run.status.decision is not None and \
                decided.run.status.decision.path == "Classical":
            active.classical = self._classical_unit(ref, decided)
            return
        active.fragments = self._dispatcher(ref, active, SingleSource(decided))
        plan_single_qpu(decided)

    def _dispatcher(self, ref: JobRef, active: Active, source: FragmentSource) -> Dispatcher:
        nodes = {n["metadata"]["name"]: n for n in active.record.fleet}
        return Dispatcher(self.kube, ref, self.worker, source, nodes, active.record.now,
                          active.decided.reduced.deadline_remaining)

    def _classical_unit(self, ref: JobRef, decided: DecidedJob) -> Unit:
        reduced = decided.reduced
        name = classical_name(ref.name)
        data = classical_input_data(
            ref, name, circuits_to_b64([reduced.circuit]), reduced.observables,
            reduced.shots, decided.context.classical_method or "statevector", decided.seed)
        check_size(data, "the classical input")
        decided.run.status.phase = Phase.RUNNING
        return Unit(build_classical_pod(ref, name, input_name(name), self.worker),
                    build_configmap(ref, input_name(name), "input", data), result_name(name))

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
                plan_data = None
                if decided.qip.path == "Distributed":
                    plan_data = self.kube.configmap(ref.namespace, cutplan_name(ref.name))
                self._prepare(ref, active, plan_data)
                if plan_data is None and active.plan_data is not None:
                    self.kube.create(build_configmap(ref, cutplan_name(ref.name), "plan",
                                                     active.plan_data))
            except Exception as err:  # the record no longer decides: say so, do not loop
                status = run.fail(Reason.INTERNAL_ERROR,
                                  f"could not re-derive the recorded decision: {err}")
                return self._write(ref, stored, status, [_failed_event(status)])
            self.active[ref.uid] = active
            events.append(Event("Normal", "Resumed", "re-derived the recorded decision"))
        return self._advance(ref, stored, active, events)

    def _advance(self, ref: JobRef, stored: Mapping[str, Any] | None, active: Active,
                 events: list[Event]) -> list[Event]:
        """Read the job's pods and ConfigMaps; create what is missing; finish when done."""
        run = active.decided.run
        labels = {LABEL_JOB: ref.name[:63]}
        pods = self.kube.pods(ref.namespace, labels)
        found = self.kube.labelled_configmaps(ref.namespace, labels)
        configmaps = {name: data for name, (_, data) in found.items()}
        if active.classical is not None:
            return self._advance_classical(ref, stored, active, pods, configmaps, events)
        dispatcher = active.fragments
        assert dispatcher is not None
        inputs = {n: v for n, v in found.items() if v[0].get(LABEL_ROLE) == "input"}
        tick = dispatcher.step(pods, configmaps, inputs, self.qpus)
        events += tick.events
        if tick.failure is not None:
            status = run.fail(*tick.failure)
            dispatcher.stop_waiting(self.kube.pods(ref.namespace, labels))
            self.active.pop(ref.uid, None)
            return self._write(ref, stored, status, [*events, _failed_event(status)])
        if len(tick.results) < len(dispatcher.source.slots):
            return self._write(ref, stored, run.status, events)
        status = guarded(run, lambda: dispatcher.source.finish(tick.results))
        self._timings(active, status, tick.seconds.values())
        self.active.pop(ref.uid, None)
        events.append(Event("Normal", "Executed",
                            f"{len(tick.results)} fragment pod(s) completed"))
        return self._write(ref, stored, status, [*events, _final_event(status)])

    def _advance_classical(self, ref: JobRef, stored: Mapping[str, Any] | None, active: Active,
                           pods: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, str]],
                           events: list[Event]) -> list[Event]:
        unit, decided = active.classical, active.decided
        assert unit is not None
        run = decided.run
        data = configmaps.get(unit.result)
        if data is None:
            name = unit.pod["metadata"]["name"]
            pod: Any = pods.get(name)
            phase = pod.status.phase if pod is not None and pod.status is not None else None
            if phase in ("Failed", "Succeeded"):
                msg = (f"pod {name} failed: {termination(pod)}" if phase == "Failed"
                       else f"pod {name} succeeded without writing {unit.result}")
                status = run.fail(Reason.EXECUTION_FAILED, msg)
                self.active.pop(ref.uid, None)
                return self._write(ref, stored, status, [*events, _failed_event(status)])
            self.kube.create(unit.input)
            if pod is None and self.kube.create(unit.pod):
                events.append(Event("Normal", "Created", f"pod {name} (classical fallback)"))
            return self._write(ref, stored, run.status, events)
        status = guarded(run, lambda: finish_classical(decided, classical_outcome(data)))
        self._timings(active, status, [seconds(data)])
        self.active.pop(ref.uid, None)
        events.append(Event("Normal", "Executed", "1 pod(s) completed"))
        return self._write(ref, stored, status, [*events, _final_event(status)])

    def _timings(self, active: Active, status: QuantumJobStatus,
                 backend_seconds: Iterable[float]) -> None:
        if status.timings is not None:
            status.timings.execute_seconds = round(max(backend_seconds, default=0.0), 4)
            status.timings.total_seconds = round(
                (datetime.now(UTC) - active.record.now).total_seconds(), 4)

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
