"""Fragment pods of a quantum job, level-based: read the pods and ConfigMaps that exist, create
what is missing, release gated pods, reschedule fragments whose QPU is gone or whose pod
failed.

A lost QPU (its QPUNode deleted, being deleted, or Ready=False other than Cordoned) is decided
from the API server's state read in that pass (``availability.Pass``), never from an older view,
and so is every creation or release of a pod on a QPU. One rule for the fragments on it: one
whose pod has started (``Running``) finishes where it runs and its result is used (if the pod
then fails, it moves like any failed pod); one that has not started (no pod, ``Pending`` or
gated) moves to attempt ``n+1`` on another QPU and its pod is deleted.

Per fragment (``Slot``) the state lives in the API server: attempt ``n`` is the pod
``attempt_name(fragment_name(job, key), n)`` with its input ConfigMap, labelled with the
fragment and attempt; every attempt writes the *same* result ConfigMap (created once, first
writer wins), so a result, once written, is never recomputed and a rescheduled fragment never
counts twice. A restarted operator sees the highest attempt and carries on from it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from qbackbone.api.conditions import Reason
from qbackbone.core.errors import JobFailure
from qbackbone.k8s.availability import Pass, QPUView
from qbackbone.k8s.builders import (
    PRECEDENCE_GATE,
    JobRef,
    WorkerConfig,
    build_claim_template,
    build_configmap,
    build_fragment_pod,
)
from qbackbone.k8s.codec import TooLarge, check_size
from qbackbone.k8s.events import Event
from qbackbone.k8s.fragments import FragmentSource, Slot, SlotResult
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.names import (
    LABEL_ATTEMPT,
    LABEL_FRAGMENT,
    LABEL_ROLE,
    LABEL_SUBCIRCUIT,
    attempt_name,
    fragment_name,
    input_name,
    label_value,
    result_name,
)
from qbackbone.k8s.pods import pod_qpu, pod_state, running_since, termination
from qbackbone.k8s.queueing import PodGroup
from qbackbone.k8s.results import fragment_counts, fragment_estimates, fragment_measured

Labelled = tuple[Mapping[str, str], Mapping[str, str]]  # a ConfigMap's labels and data
MAX_ATTEMPTS = 6  # QPU losses and the one retry of a failed pod, per fragment
TERMINAL_PODS = ("Succeeded", "Failed")


@dataclass
class Attempt:
    """One attempt of a fragment: its pod name, QPU, and what exists of it."""

    number: int
    name: str
    qpu: str
    pod: Any = None  # V1Pod
    has_input: bool = False

    @property
    def phase(self) -> str | None:
        return self.pod.status.phase if self.pod is not None and self.pod.status else None


@dataclass
class Tick:
    """What one pass found: results by fragment, events, and a failure that ends the job."""

    results: dict[str, SlotResult] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    failure: tuple[Reason, str] | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # backend seconds per result

    def fail(self, reason: Reason, message: str) -> Tick:
        if self.failure is None:
            self.failure = (reason, message)
        return self


class Dispatcher:
    """Keeps one pod per unfinished fragment on a Ready QPU, until every fragment has a result."""

    def __init__(self, kube: Kube, ref: JobRef, worker: WorkerConfig, source: FragmentSource,
                 nodes: Mapping[str, dict[str, Any]], decided_at: datetime,
                 deadline_seconds: float | None, group: PodGroup | None = None) -> None:
        self.kube, self.ref, self.worker, self.source = kube, ref, worker, source
        self.group = group  # the kueue pod group of a queued job (k8s/queueing.py)
        self.nodes = nodes  # the QPUNodes of the decision, by name
        self.decided_at = decided_at
        self.deadline_seconds = deadline_seconds
        self._inputs: dict[tuple[str, int], dict[str, str]] = {}  # built, not yet created
        # (slot, its current QPU, Unix start or None) per fragment without a result, as seen
        self.outstanding: list[tuple[Slot, str, float | None]] = [
            (slot, slot.qpu, None) for slot in source.slots]
        # where each fragment runs now (its current attempt's QPU) or ran (its result's)
        self.placed: dict[str, str] = {slot.key: slot.qpu for slot in source.slots}

    # -- reading -------------------------------------------------------------------------------

    def base(self, slot: Slot) -> str:
        return fragment_name(self.ref.name, slot.key)

    def result_name(self, slot: Slot) -> str:
        return result_name(self.base(slot))

    def _attempts(self, slot: Slot, pods: Mapping[str, Any],
                  configmaps: Mapping[str, Mapping[str, str]],
                  inputs: Mapping[str, Labelled]) -> list[Attempt]:
        """The slot's attempts that exist, by number; attempt 0 on the planned QPU if none."""
        label = label_value(slot.key)
        found: dict[int, Attempt] = {}
        for name, pod in pods.items():
            labels = pod.metadata.labels or {}
            if labels.get(LABEL_FRAGMENT) == label and labels.get(LABEL_ATTEMPT, "").isdigit():
                n = int(labels[LABEL_ATTEMPT])
                found[n] = Attempt(n, name, pod_qpu(pod) or slot.qpu, pod,
                                   input_name(name) in configmaps)
        for labels, data in inputs.values():
            if labels.get(LABEL_FRAGMENT) == label and labels.get(LABEL_ATTEMPT, "").isdigit():
                n = int(labels[LABEL_ATTEMPT])
                if n not in found:
                    pod_name = attempt_name(self.base(slot), n)
                    node = json.loads(data.get("qpunode.json") or "{}")
                    found[n] = Attempt(n, pod_name, node.get("metadata", {}).get("name", slot.qpu),
                                       None, True)
        if not found:
            return [Attempt(0, self.base(slot), slot.qpu)]
        return [found[n] for n in sorted(found)]

    # -- one pass ------------------------------------------------------------------------------

    def step(self, pods: Mapping[str, Any], configmaps: Mapping[str, Mapping[str, str]],
             inputs: Mapping[str, Labelled], qpus: QPUView, read_at: float | None = None) -> Tick:
        """Collect results, then move every unfinished fragment one step.

        ``read_at`` (Unix seconds) is when ``pods`` and ``configmaps`` were about to be read:
        when the deadline had passed by then and a result is missing, the job fails with
        ``DeadlineExceeded`` naming what was outstanding (a result written before the
        deadline is in the listing, so none that arrived in time is lost).
        """
        tick = Tick()
        for slot in self.source.slots:
            data = configmaps.get(self.result_name(slot))
            if data is not None:
                tick.results[slot.key] = slot_result(data, self.decided_at)
                tick.seconds[slot.key] = float(data.get("seconds") or 0.0)
                self.placed[slot.key] = tick.results[slot.key].qpu or self.placed[slot.key]
        missing = [slot for slot in self.source.slots if slot.key not in tick.results]
        if missing and self._past_deadline(read_at):
            outstanding = []
            for slot in missing:
                current = self._attempts(slot, pods, configmaps, inputs)[-1]
                outstanding.append(f"{slot.key} (pod {current.name} on QPU {current.qpu}: "
                                   f"{pod_state(current.pod)})")
            return tick.fail(Reason.DEADLINE_EXCEEDED,
                             f"{self._deadline_text(read_at)} with {len(missing)} of "
                             f"{len(self.source.slots)} fragment result(s) outstanding: "
                             f"{'; '.join(outstanding)}")
        self.outstanding = []
        view = Pass(qpus)
        for slot in missing:
            attempts = self._attempts(slot, pods, configmaps, inputs)
            current = attempts[-1]
            self.placed[slot.key] = current.qpu
            self.outstanding.append((slot, current.qpu, running_since(current.pod)))
            for stale in attempts[:-1]:
                self._delete(stale)
            try:
                self._advance(slot, attempts, current, tick, view)
            except JobFailure as failure:
                tick.fail(failure.reason, failure.message)
            except TooLarge as err:
                tick.fail(Reason.INPUT_TOO_LARGE, str(err))
            if tick.failure is not None:
                return tick
        return tick

    def _advance(self, slot: Slot, attempts: list[Attempt], current: Attempt, tick: Tick,
                 view: Pass) -> None:
        if current.phase == "Running":
            return  # started: it finishes where it runs, even on a QPU lost since (module doc)
        if view.lost(current.qpu):
            self._move(slot, current, tick, view)
            return
        if current.phase == "Failed":
            failed = [a for a in attempts if a.phase == "Failed"]
            why = f"pod {current.name} on QPU {current.qpu} failed: {termination(current.pod)}"
            if len(failed) >= 2:
                tick.fail(Reason.EXECUTION_FAILED, f"{why} (its retry on another QPU failed too)")
            elif self._past_deadline():
                tick.fail(Reason.EXECUTION_FAILED, f"{why}; no time left before the deadline "
                          "to retry it")
            else:
                self._reschedule(slot, current, {a.qpu for a in failed}, why,
                                 Reason.EXECUTION_FAILED, tick, view)
            return
        if current.phase == "Succeeded":
            tick.fail(Reason.EXECUTION_FAILED,
                      f"pod {current.name} succeeded without writing {self.result_name(slot)}")
            return
        self._ensure(slot, current, tick, view)

    def _move(self, slot: Slot, current: Attempt, tick: Tick, view: Pass) -> None:
        """The fragment's QPU is lost and its pod has not started: attempt n+1 elsewhere."""
        why = f"QPUNode {current.qpu} was deleted or is not Ready"
        self._reschedule(slot, current, {current.qpu}, why, Reason.QPU_UNAVAILABLE, tick, view)

    def _ensure(self, slot: Slot, attempt: Attempt, tick: Tick, view: Pass) -> None:
        """Create the attempt's input (once its work is known) and pod; release its gate.
        Nothing is created or released on a QPU the API server no longer has: the fragment
        moves instead."""
        data = None if attempt.has_input else self._input_data(slot, attempt, tick.results)
        gated = attempt.pod is not None and any(
            gate.name == PRECEDENCE_GATE for gate in attempt.pod.spec.scheduling_gates or ())
        release = gated and (attempt.has_input or data is not None)
        if (attempt.pod is None or data is not None or release) and \
                attempt.qpu not in view.fresh().alive:
            self._move(slot, attempt, tick, view)
            return
        if data is not None:
            self.kube.create(build_configmap(self.ref, input_name(attempt.name), "input",
                                             data, attempt.qpu,
                                             labels=self._labels(slot, attempt)))
            self._inputs.pop((slot.key, attempt.number), None)
            attempt.has_input = True
        if attempt.pod is None:
            node = self.nodes[attempt.qpu]
            if self.worker.qpu_claims:
                self.kube.create(build_claim_template(self.ref, attempt.qpu))
            pod = build_fragment_pod(self.ref, attempt.name, input_name(attempt.name),
                                     attempt.qpu, self.worker,
                                     (node.get("spec") or {}).get("nodeSelector"),
                                     {**self._labels(slot, attempt),
                                      **(self.group.labels if self.group else {})},
                                     gated=not attempt.has_input,
                                     annotations=self.group.annotations if self.group else None)
            if self.kube.create(pod):
                gate = "" if attempt.has_input else ", gated until its predecessors have results"
                tick.events.append(Event("Normal", "Created",
                                         f"pod {attempt.name} on QPU {attempt.qpu}{gate}"))
        elif release:
            self.kube.remove_scheduling_gate(self.ref.namespace, attempt.name, PRECEDENCE_GATE)
            tick.events.append(Event("Normal", "Released",
                                     f"pod {attempt.name}: predecessors have results, inputs "
                                     "written, scheduling gate removed"))

    def _input_data(self, slot: Slot, attempt: Attempt,
                    results: Mapping[str, SlotResult]) -> dict[str, str] | None:
        """The attempt's input ConfigMap data; None while its predecessors run; TooLarge."""
        key = (slot.key, attempt.number)
        if key not in self._inputs:
            work = self.source.work(slot, attempt.qpu, attempt.number, results)
            if work is None:
                return None
            data = work.input_data(self.ref, attempt.name, self.nodes[attempt.qpu],
                                   self.result_name(slot))
            check_size(data, f"the input of fragment {slot.key}")
            self._inputs[key] = data
        return self._inputs[key]

    def check_inputs(self) -> None:
        """Build the first inputs of every fragment not waiting for predecessors, before
        anything is created: TooLarge (or JobFailure) ends the job with nothing left behind."""
        for slot in self.source.slots:
            self._input_data(slot, Attempt(0, self.base(slot), slot.qpu), {})

    def _reschedule(self, slot: Slot, current: Attempt, exclude: set[str], why: str,
                    reason: Reason, tick: Tick, view: Pass) -> None:
        """Attempt ``n+1`` on the preferred QPU Ready now that fits; the job fails when none
        does."""
        eligible = self.source.candidates(slot)
        ready = view.fresh().ready
        others = [q for q in eligible if q in ready and q in self.nodes and q not in exclude]
        if not others or current.number + 1 >= MAX_ATTEMPTS:
            tried = "" if others else (f"; no other eligible QPU is Ready (eligible: "
                                       f"{', '.join(eligible) or 'none'})")
            limit = f"; {MAX_ATTEMPTS} attempts made" if others else ""
            tick.fail(reason, f"fragment {slot.key} (subcircuit {slot.subcircuit}): "
                      f"{why}{tried}{limit}")
            return
        following = Attempt(current.number + 1,
                            attempt_name(self.base(slot), current.number + 1), others[0])
        self._ensure(slot, following, tick, view)
        self._delete(current)
        self.placed[slot.key] = following.qpu
        tick.events.append(Event("Warning", "Rescheduled",
                                 f"fragment {slot.key}: {why}; attempt {following.number} "
                                 f"on QPU {following.qpu} (pod {following.name})"))

    def _delete(self, attempt: Attempt) -> None:
        pod = attempt.pod
        if pod is None or attempt.phase in TERMINAL_PODS or pod.metadata.deletion_timestamp:
            return
        self.kube.delete_pod(self.ref.namespace, attempt.name)

    def _labels(self, slot: Slot, attempt: Attempt) -> dict[str, str]:
        return {LABEL_FRAGMENT: label_value(slot.key), LABEL_ATTEMPT: str(attempt.number),
                LABEL_SUBCIRCUIT: label_value(slot.subcircuit)}

    @property
    def deadline_at(self) -> float | None:
        """Unix seconds of the job's deadline (creation + spec.deadline); None: no deadline."""
        return deadline_at(self.decided_at, self.deadline_seconds)

    def _past_deadline(self, now: float | None = None) -> bool:
        at = self.deadline_at
        return at is not None and (time.time() if now is None else now) > at

    def _deadline_text(self, now: float | None) -> str:
        return deadline_text(self.deadline_at, now)

    def stop_waiting(self, pods: Mapping[str, Any]) -> None:
        """The job failed: delete its pods that have not finished (``stop_pods``)."""
        stop_pods(self.kube, self.ref.namespace, pods)


def stop_pods(kube: Kube, namespace: str, pods: Mapping[str, Any]) -> None:
    """Delete a failed job's fragment and classical pods that have not finished (gated,
    pending or running), so none runs on for a result nothing will use."""
    for name, pod in pods.items():
        phase = pod.status.phase if pod.status else None
        role = (pod.metadata.labels or {}).get(LABEL_ROLE)
        if role in ("fragment", "classical") and phase not in TERMINAL_PODS and \
                not pod.metadata.deletion_timestamp:
            kube.delete_pod(namespace, name)


def deadline_at(decided_at: datetime, remaining: float | None) -> float | None:
    """Unix seconds of the deadline: the decision time plus what was left of it then."""
    return None if remaining is None else decided_at.timestamp() + remaining


def deadline_text(at: float | None, now: float | None) -> str:
    """'the deadline (<UTC time>) passed <s> ago', for DeadlineExceeded messages."""
    if at is None:
        return "no deadline"
    now = time.time() if now is None else now
    when = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
    return f"the deadline ({when}) passed {max(0.0, now - at):.1f}s ago"


def slot_result(data: Mapping[str, str], decided_at: datetime) -> SlotResult:
    """A fragment's result ConfigMap data, times relative to the decision."""
    zero = decided_at.timestamp()
    started = float(data.get("started") or zero)
    return SlotResult(counts=fragment_counts(data), estimates=fragment_estimates(data),
                      measured=fragment_measured(data),
                      qpu=data.get("qpu", ""),
                      backend=data.get("backend", ""),
                      fidelity=float(data.get("fidelity") or 1.0),
                      started=round(started - zero, 4),
                      ended=round(float(data.get("finished") or started) - zero, 4))
