"""A job's admission in the cluster: the record it is admitted with, the words its status
uses while it waits or once admitted, and the admitted work the joint plan must respect.

Pure (no I/O): ``k8s.jobflow`` asks ``k8s.queue`` for a placement, stores the record made
here in ``<job>-admission`` and reads it back after a restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from qbackbone.core.scheduling.admission import Admit
from qbackbone.k8s.dispatch import Dispatcher
from qbackbone.k8s.fragments import FragmentSource, Need
from qbackbone.k8s.queue import Committed, Placement


@dataclass(frozen=True)
class AdmissionRecord:
    """What a job was admitted with: shots per subcircuit and QPU, when the plan started
    each of those fragments (Unix seconds), and the message of its Scheduled condition."""

    shares: dict[str, dict[str, int]]
    starts: dict[str, dict[str, float]]
    message: str

    @classmethod
    def from_placement(cls, placement: Placement, admit: Admit,
                       needs: Sequence[Need]) -> AdmissionRecord:
        """The plan's answer in the job's terms (subcircuit names, absolute times)."""
        shares = {needs[i].subcircuit: dict(per_qpu) for i, per_qpu in admit.shares.items()}
        starts = {needs[i].subcircuit: {q: round(placement.planned_at + t, 3)
                                        for q, t in at.items()}
                  for i, at in admit.starts.items()}
        return cls(shares, starts, admitted_message(placement, admit, needs))

    def to_data(self) -> dict[str, str]:
        """ConfigMap data."""
        return {"shares.json": json.dumps(self.shares, sort_keys=True),
                "starts.json": json.dumps(self.starts, sort_keys=True),
                "message": self.message}

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> AdmissionRecord:
        """The record stored by :meth:`to_data`."""
        return cls(json.loads(data["shares.json"]), json.loads(data.get("starts.json") or "{}"),
                   data.get("message", "admitted by the joint plan"))

    def planned(self, source: FragmentSource) -> dict[str, float]:
        """Slot key -> planned start, for the source's slots (0 when not recorded)."""
        return {slot.key: float(self.starts.get(slot.subcircuit, {}).get(slot.qpu, 0.0))
                for slot in source.slots}


def committed_work(admitted: Iterable[tuple[str, FragmentSource, Dispatcher,
                                            AdmissionRecord]]) -> list[Committed]:
    """The admitted fragments without a result, for the joint plan, from (job uid, source,
    dispatcher, admission record) of each admitted job: QPU, shots (those the QPU runs,
    mitigation included), since when they run, their planned order and their LOCC
    predecessors."""
    out: list[Committed] = []
    for uid, source, dispatcher, record in admitted:
        planned = record.planned(source)
        after = {need.subcircuit: need.after for need in source.needs()}
        slots_of: dict[str, list[str]] = {}
        for slot in source.slots:
            slots_of.setdefault(slot.subcircuit, []).append(slot.key)
        for slot, qpu, started in list(dispatcher.outstanding):
            before = tuple(k for sub in after.get(slot.subcircuit, ())
                           for k in slots_of.get(sub, []))
            out.append(Committed(uid, slot.key, qpu, source.slot_shots(slot, qpu), started,
                                 planned.get(slot.key, 0.0), before))
    return out


def waiting_message(placement: Placement, qpus: Sequence[str], deadline_at: float | None) -> str:
    """Why a job still waits (its Scheduled=False/Queued condition)."""
    if placement.unavailable:
        return (f"none of its QPUs ({', '.join(qpus)}) is Ready (cordoned or being validated);"
                " waiting for one")
    if placement.decision.start is None:
        until = ("" if deadline_at is None else " until its deadline ("
                 f"{datetime.fromtimestamp(deadline_at, UTC).isoformat(timespec='seconds')})")
        return ("the joint plan cannot finish it by its deadline behind the admitted work and "
                f"the other waiting jobs; waiting for QPU time on {', '.join(qpus)}{until}")
    return (f"waiting for QPU time: the joint plan of the waiting jobs starts it after the "
            f"work already admitted on {', '.join(qpus)}")


def admitted_message(placement: Placement, admit: Admit, needs: Sequence[Need]) -> str:
    """How a job was admitted (its Scheduled=True/Admitted condition and event)."""
    parts = []
    for i, per_qpu in sorted(admit.shares.items()):
        split = ", ".join(f"{q} {n}" for q, n in sorted(per_qpu.items()))
        parts.append(f"{needs[i].subcircuit}: {split} shots")
    return (f"admitted by the joint plan of {placement.jobs} waiting job(s) "
            f"({placement.method}): {'; '.join(parts)}; planned to start in "
            f"{admit.start:.2f}s and finish in {admit.end:.2f}s")
