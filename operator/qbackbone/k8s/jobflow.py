"""One reconcile of a QuantumJob against the cluster: decide and dispatch, then collect.

Level-based: every call reads what exists (the decision record, fragment pods, result
ConfigMaps), creates what is missing, and writes the status once when it changed. The
controller calls it from a timer, and at once when a result the job waits for is written or
one of its pods fails; calls for the
same job are serialised, and a job this operator finished is not reconciled again from an
older body. The controller posts the returned events after the status write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qbackbone.api.conditions import ConditionType, Phase, Reason, set_condition
from qbackbone.api.manifests import ManifestError
from qbackbone.api.policy import DEFAULT_POLICY_NAME
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.core.circuits.serialize import circuits_to_b64
from qbackbone.core.errors import JobFailure
from qbackbone.core.optimize.topology import ConfigMapReader
from qbackbone.core.pipeline import (
    DecidedJob,
    DecidedProblem,
    JobRun,
    finish_classical,
    finish_problem_classically,
    guarded,
    plan_single_qpu,
)
from qbackbone.core.pipeline.distributed import plan_status
from qbackbone.core.pipeline.optimize import classical_time_limit
from qbackbone.core.scheduling.admission import Admit
from qbackbone.k8s import JOBS
from qbackbone.k8s.admission import (
    AdmissionRecord,
    committed_work,
    waiting_message,
)
from qbackbone.k8s.analysis import (
    AnalysisJob,
    analysis_input_data,
    analysis_kind,
    decide_analysis,
)
from qbackbone.k8s.availability import QPUView
from qbackbone.k8s.builders import (
    JobRef,
    WorkerConfig,
    build_classical_pod,
    build_configmap,
    classical_input_data,
)
from qbackbone.k8s.codec import TooLarge, check_size
from qbackbone.k8s.decision import DecisionRecord
from qbackbone.k8s.dispatch import Dispatcher, deadline_at, deadline_text, stop_pods
from qbackbone.k8s.events import Event
from qbackbone.k8s.failures import EXITS, TRANSIENT, failure_of
from qbackbone.k8s.fragments import CutSource, FragmentSource, SlotResult, cut_plan
from qbackbone.k8s.history import OperatorHistory
from qbackbone.k8s.kernel import KernelSource
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.kueue import QUEUE_LABEL
from qbackbone.k8s.names import (
    LABEL_JOB,
    LABEL_ROLE,
    admission_name,
    classical_name,
    cutplan_name,
    decision_name,
    input_name,
    result_name,
)
from qbackbone.k8s.objects import job_from_body, read_fleet, read_policies, trimmed
from qbackbone.k8s.pods import pod_state, termination
from qbackbone.k8s.problem import (
    ProblemSource,
    inline_network_state,
    inline_topology,
    problem_input_data,
    problem_solution,
)
from qbackbone.k8s.queue import Committed, FleetQueue, Waiting
from qbackbone.k8s.queueing import PodGroup, admission, kueue_gated, pod_group
from qbackbone.k8s.regions import ROUND_ROLE, RegionFlow, RoundSource, plan_regions, round_name
from qbackbone.k8s.results import classical_outcome, seconds
from qbackbone.k8s.single import SingleSource
from qbackbone.k8s.status import TERMINAL, failed_job_status, parse_status, write_status
from qbackbone.observability import metrics

__all__ = ["Event", "JobReconciler", "Retry", "warm_up"]

log = logging.getLogger(__name__)
QPU_VIEW_SECONDS = 5.0  # the shared QPUNode view's age at most (k8s.availability)
FORGET_SECONDS = 600.0  # finished jobs and ended pods are remembered this long


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
    decided: DecidedJob | None  # None: a problem job solved classically
    classical: Unit | None = None
    problem: DecidedProblem | None = None  # problem jobs (spec.problem)
    source: FragmentSource | None = None  # a quantum job's fragments, once planned
    fragments: Dispatcher | None = None  # ... and their pods, once admitted
    admission: AdmissionRecord | None = None  # what the joint plan admitted it with
    plan_data: dict[str, str] | None = None  # the cut plan record of a Distributed decision
    analysis: AnalysisJob | None = None  # detect and forecast jobs (k8s.analysis)
    regions: RegionFlow | None = None  # problem jobs decomposed by region (k8s.regions)
    done: QuantumJobStatus | None = None  # a decomposed job's final status, to write

    @property
    def run(self) -> JobRun:
        """The run whose status this job's reconciles write."""
        if self.analysis is not None:
            return self.analysis.run
        if self.regions is not None:
            return self.regions.run
        if self.decided is not None:
            return self.decided.run
        assert self.problem is not None
        return self.problem.state.run

    @property
    def remaining(self) -> float | None:
        """Seconds from the decision to the job's deadline; None: none."""
        return (self.analysis.remaining if self.analysis is not None
                else self.regions.remaining if self.regions is not None
                else self.decided.reduced.deadline_remaining if self.decided is not None
                else self.problem.state.remaining if self.problem is not None else None)

    @property
    def deadline_at(self) -> float | None:
        """Unix seconds of the job's deadline (creation + spec.deadline); None: none."""
        return deadline_at(self.record.now, self.remaining)

    @property
    def admission_record(self) -> str:
        """The admission ConfigMap's name: one per round of a decomposed job."""
        name = admission_name(self.run.job.metadata.name)
        if isinstance(self.source, RoundSource):
            return f"{name}-r{self.source.round}"
        return name


def _derive(record: DecisionRecord, run: JobRun) -> tuple[DecisionRecord, Active]:
    """Decide the recorded job (JobFailure when refused); a problem job's record comes back
    with the outcome of its timed rule, to be stored."""
    if analysis_kind(record.job) is not None:
        analysis = decide_analysis(run, record.qpus(), record.policies(), record.seed)
        kernel = analysis.detect.state.kernel_job if analysis.detect and analysis.quantum else None
        return record, Active(record.stamp, record, kernel, analysis=analysis)
    if record.is_problem:
        regions = plan_regions(run, record.qpus(), record.policies(), record.seed,
                               record.now.timestamp(), record.learned)
        if regions is not None:
            return record, Active(record.stamp, record, None, regions=regions)
        record, problem = record.decide_problem(run)
        return record, Active(record.stamp, record, problem.circuit_job, problem=problem)
    return record, Active(record.stamp, record, record.decide(run))


class _LogProgress:
    def __init__(self, job: str) -> None:
        self.job = job

    def step(self, phase: str, message: str) -> None:
        log.info("%s: %s: %s", self.job, phase, message)


class JobReconciler:
    """Reconciles QuantumJobs; one instance per operator, kept in kopf's memo."""

    def __init__(self, kube: Kube, worker: WorkerConfig, seed: int | None = None,
                 queue: FleetQueue | None = None, history: OperatorHistory | None = None) -> None:
        self.kube = kube
        self.history = history or OperatorHistory(None)  # records finished jobs, learns
        self.worker = worker
        self.seed = seed
        self.queue = queue or FleetQueue(seed=seed or 0, on_plan=metrics.joint_plan_made)
        self.active: dict[str, Active] = {}
        self.qpus = QPUView(kube, QPU_VIEW_SECONDS)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}  # one per job uid being reconciled
        self._finished: dict[str, float] = {}  # job uid -> when this operator finished it
        self._ended: dict[str, float] = {}  # pod uid -> when its end was first seen
        self._results: dict[str, set[str]] = {}  # job uid -> result ConfigMaps seen written

    # -- entry points ------------------------------------------------------------------------

    def reconcile(self, body: Mapping[str, Any]) -> list[Event]:
        """Move the job one step; returns the events to post (after the status write).

        Safe to call from several threads: calls for one job run one at a time, and a job
        whose terminal status this operator wrote is left alone even if ``body`` predates it.
        """
        uid = body["metadata"]["uid"]
        with self._guard:
            lock = self._locks.setdefault(uid, threading.Lock())
        with lock:
            if uid in self._finished:
                return []
            try:
                return self._reconcile(body)
            except Retry:
                raise
            except BaseException as err:  # PanicException is one (k8s.failures)
                if isinstance(err, EXITS + TRANSIENT):
                    raise  # the process stops, or the API server is retried by kopf
                return self._crashed(body, err)

    def _forget_old(self, now: float) -> None:
        for seen in (self._ended, self._finished):
            for key in [k for k, t in seen.items() if now - t > FORGET_SECONDS]:
                del seen[key]
                self._locks.pop(key, None)
                self._results.pop(key, None)

    def pod_ended(self, pod_uid: str) -> bool:
        """True the first time a pod is seen Succeeded or Failed: its job may move now."""
        now = time.monotonic()
        with self._guard:
            self._forget_old(now)
            if pod_uid in self._ended:
                return False
            self._ended[pod_uid] = now
            return True

    def result_written(self, job_uid: str, name: str) -> bool:
        """A result ConfigMap of the job was written: True when a reconcile now can move the
        job (a job not in memory, an LOCC job whose gated fragments wait for results, a
        classical pod's result, or the last missing fragment result of any other job)."""
        with self._guard:
            self._forget_old(time.monotonic())
            seen = self._results.setdefault(job_uid, set())
            seen.add(name)
            seen = set(seen)
        active = self.active.get(job_uid)
        dispatcher = active.fragments if active is not None else None
        if dispatcher is None or any(slot.gated for slot in dispatcher.source.slots):
            return True
        return all(dispatcher.result_name(slot) in seen for slot in dispatcher.source.slots)

    def _reconcile(self, body: Mapping[str, Any]) -> list[Event]:
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
        active = self.active.get(ref.uid)
        if active is not None:  # its decision record exists (immutable): no need to read it
            return self._advance(ref, stored, active, [])
        found = self.kube.configmap(ref.namespace, decision_name(ref.name))
        if found is None:
            return self._decide(ref, job, body)
        return self._progress(ref, stored, found)

    # -- first step: decide, then create the decision record, input ConfigMaps and pods ------

    def _decide(self, ref: JobRef, job: QuantumJob, body: Mapping[str, Any]) -> list[Event]:
        stored = body.get("status")
        if not (stored or {}).get("phase"):
            # A phase at once (kubectl get qj), before a decision that may take seconds.
            self.kube.patch_status(JOBS, ref.namespace, ref.name, {"phase": Phase.DECIDING.value})
            stored = {**(stored or {}), "phase": Phase.DECIDING.value}
        fleet = read_fleet(self.kube)
        if fleet.pending:
            raise Retry(f"waiting for QPUNode(s) {', '.join(fleet.pending)} to be validated", 1.0)
        view = read_policies(self.kube, ref.namespace)
        wanted = job.spec.policy_ref.name if job.spec.policy_ref else DEFAULT_POLICY_NAME
        if wanted in view.invalid:
            msg = f"InvocationPolicy {wanted!r} is not valid: {view.invalid[wanted]}"
            status = failed_job_status(Reason.INVALID_POLICY, msg, job.metadata.generation)
            return self._write(ref, stored, status, [Event("Warning", "Failed", msg)])
        if wanted not in view.valid and wanted != DEFAULT_POLICY_NAME:
            known = ", ".join(sorted(view.valid)) or "none"
            msg = (f"InvocationPolicy {wanted!r} does not exist in namespace {ref.namespace} "
                   f"(known: {known}); create it or remove spec.policyRef to use the default")
            status = failed_job_status(Reason.POLICY_NOT_FOUND, msg, job.metadata.generation)
            return self._write(ref, stored, status, [Event("Warning", "Failed",
                                                           f"{Reason.POLICY_NOT_FOUND}: {msg}")])
        recorded = trimmed(body)
        if job.spec.problem is not None:
            try:  # the record keeps the documents themselves: later edits change nothing
                recorded = inline_topology(recorded, self._config_map_reader(ref.namespace))
            except KeyError as err:
                msg = str(err.args[0])
                status = failed_job_status(Reason.INVALID_PROBLEM, msg, job.metadata.generation)
                return self._write(ref, stored, status, [Event("Warning", "Failed", msg)])
        policy = inline_network_state(view.valid.get(wanted),
                                      self._config_map_reader(ref.namespace))
        record = DecisionRecord(job=recorded, fleet=fleet.nodes, policy=policy,
                                now=datetime.now(UTC),
                                seed=self.seed,
                                learned=self.history.learned_for(view.valid.get(wanted),
                                                                 ref.namespace))
        run = record.start(_LogProgress(ref.name))
        try:
            record, active = _derive(record, run)
        except BaseException as err:  # a hostile job fails alone (k8s.failures)
            if isinstance(err, EXITS):
                raise
            status = _fail(ref, run, err)
            return self._write(ref, stored, status, [_failed_event(status)])
        decided_as = run.status.decision
        generation = decided_as.policy_generation if decided_as else None
        events = [Event("Normal", "Decided", f"{decided_as.path if decided_as else '?'}: "
                        f"{decided_as.message if decided_as else ''} (policy {wanted}, "
                        f"generation {generation})")]
        try:
            self._prepare(ref, active, None)
            if active.source is not None:  # with the QIP's split; admission may change it
                self._dispatcher(ref, active, active.source).check_inputs()
            decision = build_configmap(ref, decision_name(ref.name), "decision", record.to_data())
            check_size(decision["data"], "the decision record")
            cutplan = None
            if active.plan_data is not None:
                cutplan = build_configmap(ref, cutplan_name(ref.name), "plan", active.plan_data)
                check_size(cutplan["data"], "the cut plan")
        except TooLarge as err:
            status = run.fail(Reason.INPUT_TOO_LARGE, str(err))
            return self._write(ref, stored, status, [*events, _failed_event(status)])
        except BaseException as err:  # a refusal (e.g. CutInfeasible), a hostile job, a bug
            if isinstance(err, EXITS):
                raise
            status = _fail(ref, run, err)
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
        if active.regions is not None:
            self._next_round(ref, active, active.regions)
            return
        if active.analysis is not None:
            self._prepare_analysis(ref, active, active.analysis)
            return
        if active.problem is not None:
            self._prepare_problem(ref, active, active.problem)
            return
        assert decided is not None
        if decided.qip.path == "Distributed":
            plan, active.plan_data = cut_plan(decided, plan_data)
            if plan is not None:
                active.source = CutSource(decided, plan, record.stamp)
                return
        if decided.run.status.decision is not None and \
                decided.run.status.decision.path == "Classical":
            active.classical = self._classical_unit(ref, decided)
            return
        active.source = SingleSource(decided)

    def _prepare_problem(self, ref: JobRef, active: Active, problem: DecidedProblem) -> None:
        """The QAOA circuit's fragments (a sampling job), or the classical solver's pod."""
        if problem.circuit_job is not None:
            active.source = ProblemSource(problem)
            return
        name = classical_name(ref.name)
        data = problem_input_data(ref, name, active.record.job, active.record.policy,
                                  problem.state.seed, classical_time_limit(problem))
        check_size(data, "the problem input")
        problem.state.run.status.phase = Phase.RUNNING
        active.classical = Unit(build_classical_pod(ref, name, input_name(name), self.worker),
                                build_configmap(ref, input_name(name), "input", data),
                                result_name(name))

    def _next_round(self, ref: JobRef, active: Active, flow: RegionFlow) -> None:
        """Replay the coordinator from the round records: the next round's fragments (its
        admission record when one exists), or the final status. Rounds it completed are
        recorded first (first writer wins: a record is never rewritten)."""
        if not flow.recorded and not flow.known:
            listed = self.kube.labelled_configmaps(ref.namespace, {LABEL_JOB: ref.name[:63]})
            flow.load({name: data for name, (labels, data) in listed.items()
                       if labels.get(LABEL_ROLE) == ROUND_ROLE})
        step = flow.step(time.time())
        for index, data in flow.records().items():
            self.kube.create(build_configmap(ref, round_name(ref.name, index), ROUND_ROLE, data))
        active.source, active.fragments, active.admission = None, None, None
        if not isinstance(step, RoundSource):
            active.done = step
            return
        active.source, active.decided = step, step.representative
        found = self.kube.configmap(ref.namespace, active.admission_record)
        if found is not None:
            active.admission = AdmissionRecord.from_data(found)

    def _prepare_analysis(self, ref: JobRef, active: Active, analysis: AnalysisJob) -> None:
        """A detect job's kernel fragments, or the worker pod of its classical models (and
        of every forecast job)."""
        if analysis.detect is not None and analysis.quantum:
            active.source = KernelSource(analysis.detect)
            return
        name = classical_name(ref.name)
        data = analysis_input_data(ref, name, active.record.job, active.record.policy,
                                   active.record.seed, active.record.now)
        check_size(data, "the analysis input")
        analysis.run.status.phase = Phase.RUNNING
        active.classical = Unit(build_classical_pod(ref, name, input_name(name), self.worker),
                                build_configmap(ref, input_name(name), "input", data),
                                result_name(name))

    def _config_map_reader(self, namespace: str) -> ConfigMapReader:
        """(name, key) -> value from the cluster; KeyError naming what is missing."""
        def read(name: str, key: str) -> str:
            data = self.kube.configmap(namespace, name)
            if data is None:
                raise KeyError(f"ConfigMap {namespace}/{name} does not exist")
            if key not in data:
                raise KeyError(f"ConfigMap {namespace}/{name} has no key {key!r}")
            return data[key]
        return read

    def _dispatcher(self, ref: JobRef, active: Active, source: FragmentSource) -> Dispatcher:
        nodes = {n["metadata"]["name"]: n for n in active.record.fleet}
        suffix = f"-r{source.round}" if isinstance(source, RoundSource) else ""
        try:  # a decomposed job's rounds: one pod group each
            group = pod_group(active.run.job.metadata.labels, ref.name + suffix,
                              ref.uid + suffix, len(source.slots))
        except ValueError as err:
            raise JobFailure(Reason.INVALID_QUEUE_NAME, f"label {QUEUE_LABEL}: {err}") from None
        return Dispatcher(self.kube, ref, self.worker, source, nodes, active.record.now,
                          active.remaining, group)

    def _queue_condition(self, ref: JobRef, run: JobRun, group: PodGroup,
                         pods: Mapping[str, Any], events: list[Event]) -> None:
        """Say in the job's conditions where kueue has its pod group (read only while a pod
        is still held, so an admitted job costs no extra API call)."""
        held = any(kueue_gated(pod) for pod in pods.values())
        workload = self.kube.workload(ref.namespace, group.name) if held else None
        state = admission(group, pods, workload, self.kube.api.sanitize_for_serialization)
        before = next((c for c in run.status.conditions
                       if c.type == ConditionType.QUEUE_ADMITTED), None)
        if before is None or before.reason != state.reason:
            events.append(Event("Normal" if state.admitted else "Warning",
                                "QueueAdmitted" if state.admitted else "QueuedInKueue",
                                f"pod group {group.name}: {state.reason}: {state.message}"))
        set_condition(run.status.conditions, ConditionType.QUEUE_ADMITTED, state.admitted,
                      state.reason, state.message or state.reason, run.job.metadata.generation,
                      datetime.now(UTC))

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
                record, active = _derive(record, run)
                decided = active.decided
                plan_data = None
                if decided is not None and decided.qip.path == "Distributed":
                    plan_data = self.kube.configmap(ref.namespace, cutplan_name(ref.name))
                self._prepare(ref, active, plan_data)
                if plan_data is None and active.plan_data is not None:
                    self.kube.create(build_configmap(ref, cutplan_name(ref.name), "plan",
                                                     active.plan_data))
                if active.source is not None and active.admission is None:
                    found = self.kube.configmap(ref.namespace, active.admission_record)
                    if found is not None:
                        active.admission = AdmissionRecord.from_data(found)
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
        run = active.run
        if active.done is not None:  # a decomposed job whose last round is recorded
            self.active.pop(ref.uid, None)
            return self._write(ref, stored, active.done, [*events, _final_event(active.done)])
        if active.source is not None and active.fragments is None:
            try:
                waiting = self._admit(ref, active, events)
            except TooLarge as err:
                waiting = run.fail(Reason.INPUT_TOO_LARGE, str(err))
            except JobFailure as failure:  # e.g. a subcircuit no longer fits its QPU
                waiting = run.fail(failure.reason, failure.message)
            if waiting is not None:
                if waiting.phase.value in TERMINAL:
                    self.active.pop(ref.uid, None)
                    events.append(_failed_event(waiting))
                return self._write(ref, stored, waiting, events)
        labels = {LABEL_JOB: ref.name[:63]}
        read_at = time.time()  # before the listings: a result written before it is in them
        pods = self.kube.pods(ref.namespace, labels)
        found = self.kube.labelled_configmaps(ref.namespace, labels)
        configmaps = {name: data for name, (_, data) in found.items()}
        if active.classical is not None:
            return self._advance_classical(ref, stored, active, pods, configmaps, events,
                                           read_at)
        dispatcher = active.fragments
        assert dispatcher is not None
        inputs = {n: v for n, v in found.items() if v[0].get(LABEL_ROLE) == "input"}
        tick = dispatcher.step(pods, configmaps, inputs, self.qpus, read_at)
        events += tick.events
        if dispatcher.group is not None and tick.failure is None and pods:
            self._queue_condition(ref, run, dispatcher.group, pods, events)
        dispatcher.source.retarget(run.status.plan, dispatcher.placed)
        if tick.failure is not None:
            status = run.fail(*tick.failure)
            late = tick.failure[0] == Reason.DEADLINE_EXCEEDED  # nothing created this pass
            dispatcher.stop_waiting(pods if late else self.kube.pods(ref.namespace, labels))
            self.active.pop(ref.uid, None)
            return self._write(ref, stored, status, [*events, _failed_event(status)])
        if len(tick.results) < len(dispatcher.source.slots):
            return self._write(ref, stored, run.status, events)
        if active.regions is not None:
            return self._round_done(ref, stored, active, active.regions, tick.results, events)
        status = guarded(run, lambda: dispatcher.source.finish(tick.results))
        self._timings(active, status, tick.seconds.values())
        self.active.pop(ref.uid, None)
        events.append(Event("Normal", "Executed",
                            f"{len(tick.results)} fragment pod(s) completed"))
        return self._write(ref, stored, status, [*events, _final_event(status)])

    def _round_done(self, ref: JobRef, stored: Mapping[str, Any] | None, active: Active,
                    flow: RegionFlow, results: Mapping[str, SlotResult],
                    events: list[Event]) -> list[Event]:
        """Every fragment of a round has its counts: record the round, go on to the next
        round (or the final repair and verification)."""
        source = active.source
        assert isinstance(source, RoundSource)
        events.append(Event("Normal", "RoundCompleted", f"round {source.round + 1}: "
                            f"{len(source.blocks)} regional sub-QUBO(s) sampled"))
        try:
            flow.complete(source, results)
            self._next_round(ref, active, flow)
        except BaseException as err:  # a failed verification, a hostile job, a bug
            if isinstance(err, EXITS + TRANSIENT):
                raise
            status = _fail(ref, active.run, err)
            self.active.pop(ref.uid, None)
            return self._write(ref, stored, status, [*events, _failed_event(status)])
        return self._advance(ref, stored, active, events)

    # -- admission: the joint plan of the waiting jobs -------------------------------------------

    def _admit(self, ref: JobRef, active: Active, events: list[Event]) -> QuantumJobStatus | None:
        """Take the job's admission (recorded, or now from the joint plan) and set up its
        fragments; else the status to write while it waits (or fails: deadline, QPUs gone)."""
        run, source = active.run, active.source
        assert source is not None
        if active.admission is None:
            status = self._place(ref, active, events)
            if status is not None:
                return status
        assert active.admission is not None
        source.assign(active.admission.shares)
        self._plan_status(active, source)
        run.condition(ConditionType.SCHEDULED, True, Reason.ADMITTED, active.admission.message)
        run.status.phase = Phase.RUNNING
        active.fragments = self._dispatcher(ref, active, source)
        active.fragments.check_inputs()
        return None

    def _place(self, ref: JobRef, active: Active, events: list[Event]
               ) -> QuantumJobStatus | None:
        """Ask the queue; on admission create the admission record (first writer wins)."""
        run, source = active.run, active.source
        assert source is not None
        now = time.time()
        at = active.deadline_at
        waiting = Waiting.of(ref.uid, source, self._decided(active), at)
        needs = waiting.needs
        allowed = sorted({q for need in needs for q in need.qpus})
        if at is not None and now > at:
            self.queue.remove(ref.uid)
            return run.fail(Reason.DEADLINE_EXCEEDED,
                            f"{deadline_text(at, now)} while it waited for QPU time: the joint "
                            f"plan never admitted it (its QPUs: {', '.join(allowed)})")
        view = self.qpus.get()
        if not set(allowed) <= view.ready:  # a QPU the decision saw may be newer than the view
            view = self.qpus.get(True)
        placement = self.queue.place(waiting, view.ready, self._committed)
        if placement.unavailable and not set(allowed) & self.qpus.get(True).alive:
            self.queue.remove(ref.uid)
            return run.fail(Reason.QPU_UNAVAILABLE,
                            f"none of the QPUs it may use exists any more ({', '.join(allowed)})"
                            " while it waited for QPU time")
        if not isinstance(placement.decision, Admit):
            message = waiting_message(placement, allowed, at)
            if run.status.phase != Phase.QUEUED:
                events.append(Event("Normal", "Queued", message))
            run.status.phase = Phase.QUEUED
            run.condition(ConditionType.SCHEDULED, False, Reason.QUEUED, message)
            return run.status
        admitted = AdmissionRecord.from_placement(placement, placement.decision, needs)
        if self.kube.create(build_configmap(ref, active.admission_record, "admission",
                                            admitted.to_data())):
            active.admission = admitted
            events.append(Event("Normal", "Admitted", admitted.message))
            return None
        # Recorded before (a restart raced this reconcile): the record wins.
        found = self.kube.configmap(ref.namespace, active.admission_record)
        if found is None:
            raise Retry("admission record vanished", 1.0)
        active.admission = AdmissionRecord.from_data(found)
        return None

    @staticmethod
    def _decided(active: Active) -> DecidedJob:
        assert active.decided is not None
        return active.decided

    def _plan_status(self, active: Active, source: FragmentSource) -> None:
        """status.plan with the admitted split."""
        decided = self._decided(active)
        if isinstance(source, KernelSource):
            with active.run.phase("schedule_seconds"):
                source.plan(active.run)
        elif isinstance(source, RoundSource):  # its decision is a block's: the job's run
            source.plan(active.run)
        elif isinstance(source, CutSource):
            with decided.run.phase("schedule_seconds"):
                decided.run.status.plan = plan_status(
                    source.plan, [source.record(slot, None) for slot in source.slots])
        else:
            plan_single_qpu(decided)

    def _committed(self) -> list[Committed]:
        """The admitted fragments without a result (``admission.committed_work``)."""
        return committed_work((uid, a.source, a.fragments, a.admission)
                              for uid, a in list(self.active.items())
                              if a.source is not None and a.fragments is not None
                              and a.admission is not None)

    def _advance_classical(self, ref: JobRef, stored: Mapping[str, Any] | None, active: Active,
                           pods: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, str]],
                           events: list[Event], read_at: float) -> list[Event]:
        unit, decided = active.classical, active.decided
        assert unit is not None
        run = active.run
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
            at = active.deadline_at
            if at is not None and read_at > at:
                status = run.fail(Reason.DEADLINE_EXCEEDED,
                                  f"{deadline_text(at, read_at)} without the result "
                                  f"{unit.result} (pod {name}: {pod_state(pod)})")
                if pod is not None and phase in (None, "Pending", "Running"):
                    self.kube.delete_pod(ref.namespace, name)
                self.active.pop(ref.uid, None)
                return self._write(ref, stored, status, [*events, _failed_event(status)])
            self.kube.create(unit.input)
            if pod is None and self.kube.create(unit.pod):
                events.append(Event("Normal", "Created", f"pod {name} (classical fallback)"))
            return self._write(ref, stored, run.status, events)
        analysis = active.analysis
        if analysis is not None:
            status = guarded(run, lambda: analysis.finish(data))
        elif active.problem is not None:
            problem = active.problem
            status = guarded(run, lambda: finish_problem_classically(problem,
                                                                     problem_solution(data)))
        else:
            assert decided is not None
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
        if status.result is not None and active.run.energy_of is not None:
            # issue 20: again with the pods' seconds (the classical path's energy needs them)
            status.result.energy_joules = active.run.energy_of(status)

    # -- the one status write per reconcile ----------------------------------------------------

    def _write(self, ref: JobRef, stored: Mapping[str, Any] | None, status: QuantumJobStatus,
               events: list[Event]) -> list[Event]:
        start = time.perf_counter()
        written = write_status(self.kube, JOBS, ref.namespace, ref.name, stored, status)
        if status.phase.value in TERMINAL:
            self.queue.remove(ref.uid)
            with self._guard:
                self._finished[ref.uid] = time.monotonic()
                self._results.pop(ref.uid, None)
        if written:
            metrics.job_status_written(ref.uid, stored, status)  # decisions, finishes
            log.debug("%s/%s: status written in %.3fs", ref.namespace, ref.name,
                      time.perf_counter() - start)
        if written and status.phase.value in TERMINAL:  # issue 20: the job history
            self.history.job_finished(self.kube, ref.namespace, ref.name, status)
        return events

    def _crashed(self, body: Mapping[str, Any], err: BaseException) -> list[Event]:
        """A reconcile raised what no step handles (a bug, or an input that broke a library):
        the job fails with the reason (``failures.failure_of``) and its unfinished pods are
        deleted; other jobs and the operator carry on."""
        meta = body["metadata"]
        ref = JobRef(meta["name"], meta["namespace"], meta["uid"])
        reason, message = failure_of(err)
        log.error("%s/%s: %s: %s", ref.namespace, ref.name, reason, message, exc_info=err)
        stored = body.get("status")
        active = self.active.pop(ref.uid, None)
        if active is not None:
            status = active.run.fail(reason, message)
        else:
            base = parse_status(QuantumJobStatus, stored)
            status = failed_job_status(reason, message, meta.get("generation"), base)
        try:
            stop_pods(self.kube, ref.namespace,
                      self.kube.pods(ref.namespace, {LABEL_JOB: ref.name[:63]}))
        except TRANSIENT as api_err:  # its pods are deleted with the job, at the latest
            log.warning("%s/%s: could not delete its pods: %s", ref.namespace, ref.name, api_err)
        return self._write(ref, stored, status,
                           [Event("Warning", "Failed", f"{reason}: {message}")])


def warm_up() -> None:
    """Load what the first decision would otherwise load: Qiskit's transpiler stage plugins
    (entry points imported on the first ``transpile``, about 0.5 s) before any job arrives."""
    from qiskit import QuantumCircuit, transpile

    transpile(QuantumCircuit(1), optimization_level=1)


def _fail(ref: JobRef, run: JobRun, err: BaseException) -> QuantumJobStatus:
    """The failed status for what a step raised; the traceback logged unless a refusal."""
    reason, message = failure_of(err)
    if not isinstance(err, JobFailure):
        log.error("%s/%s: %s: %s", ref.namespace, ref.name, reason, message, exc_info=err)
    return run.fail(reason, message)


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
