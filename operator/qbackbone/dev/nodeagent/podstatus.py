"""Pod status as a kubelet reports it: phase, conditions and container states."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from qbackbone.dev.nodeagent.timefmt import now, rfc3339

RUNTIME = "qbackbone-nodeagent"
MESSAGE_LIMIT = 4096  # the kubelet's cap on a termination message


@dataclass
class ContainerRun:
    """The life of one container process."""

    name: str
    image: str
    pid: int | None = None
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str = ""

    @property
    def running(self) -> bool:
        return self.started is not None and self.finished is None

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


def container_status(run: ContainerRun) -> dict[str, Any]:
    """One entry of ``status.containerStatuses`` (or ``initContainerStatuses``)."""
    state: dict[str, Any]
    if run.finished is not None:
        state = {"terminated": {
            "exitCode": run.exit_code if run.exit_code is not None else -1,
            "reason": run.reason or ("Completed" if run.succeeded else "Error"),
            "message": run.message[:MESSAGE_LIMIT],
            "startedAt": rfc3339(run.started) if run.started else None,
            "finishedAt": rfc3339(run.finished),
            "containerID": f"{RUNTIME}://{run.pid}" if run.pid else None,
        }}
    elif run.started is not None:
        state = {"running": {"startedAt": rfc3339(run.started)}}
    else:
        state = {"waiting": {"reason": run.reason or "ContainerCreating",
                             "message": run.message[:MESSAGE_LIMIT]}}
    status: dict[str, Any] = {
        "name": run.name, "image": run.image, "imageID": "", "restartCount": 0,
        "ready": run.running, "started": run.running, "state": state,
    }
    if run.pid:
        status["containerID"] = f"{RUNTIME}://{run.pid}"
    return status


def _condition(kind: str, ok: bool, transition: str, reason: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": "True" if ok else "False",
                            "lastProbeTime": None, "lastTransitionTime": transition}
    if reason:
        cond["reason"] = reason
    return cond


def pod_status(
    pod: Any, phase: str, init_runs: list[ContainerRun], runs: list[ContainerRun],
    started: dt.datetime, reason: str = "", message: str = "",
) -> dict[str, Any]:
    """The ``status`` to patch onto ``pod`` (existing conditions of other types are kept)."""
    t = rfc3339(now())
    done = phase in ("Succeeded", "Failed")
    initialized = all(r.succeeded for r in init_runs)
    ready = phase == "Running" and bool(runs) and all(r.running for r in runs)
    mine = {
        "PodReadyToStartContainers": _condition("PodReadyToStartContainers", True, t),
        "Initialized": _condition("Initialized", initialized, t,
                                  "" if initialized else "ContainersNotInitialized"),
        "ContainersReady": _condition("ContainersReady", ready, t,
                                      "PodCompleted" if done else
                                      ("" if ready else "ContainersNotReady")),
        "Ready": _condition("Ready", ready, t, "PodCompleted" if done else
                            ("" if ready else "ContainersNotReady")),
    }
    old = {c.type: c for c in (pod.status.conditions or [])} if pod.status else {}
    conditions = []
    for kind, cond in mine.items():
        previous = old.get(kind)
        if previous is not None and previous.status == cond["status"] \
                and previous.last_transition_time is not None:
            cond["lastTransitionTime"] = rfc3339(previous.last_transition_time)
        conditions.append(cond)
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": rfc3339(started),
        "containerStatuses": [container_status(r) for r in runs],
        "qosClass": (pod.status.qos_class if pod.status and pod.status.qos_class
                     else "BestEffort"),
    }
    if init_runs:
        status["initContainerStatuses"] = [container_status(r) for r in init_runs]
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message[:MESSAGE_LIMIT]
    return status
