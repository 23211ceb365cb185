"""Run one pod's containers as local processes and report each change of its status."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qbackbone.dev.nodeagent.config import TERMINATION_ENV
from qbackbone.dev.nodeagent.podenv import ConfigError, DataLookup, command_line, container_env
from qbackbone.dev.nodeagent.podstatus import MESSAGE_LIMIT, ContainerRun, pod_status
from qbackbone.dev.nodeagent.timefmt import now

log = logging.getLogger(__name__)

Reporter = Callable[[dict[str, Any]], None]  # receives the pod's new ``status``
# (pod, sandbox directory) -> environment giving the pod's processes their API credentials
Credentials = Callable[[Any, Path], dict[str, str]]
_FALLBACK_LINES, _FALLBACK_BYTES = 80, 2048  # the kubelet's FallbackToLogsOnError limits


def _read_message(path: Path) -> str:
    try:
        return path.read_bytes()[:MESSAGE_LIMIT].decode("utf-8", "replace")
    except OSError:
        return ""


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_bytes().splitlines()[-_FALLBACK_LINES:]
    except OSError:
        return ""
    return b"\n".join(lines)[-_FALLBACK_BYTES:].decode("utf-8", "replace")


class PodRunner:
    """Runs init containers one after another, then all containers at once (restartPolicy
    Never semantics), in a sandbox directory ``<sandbox_root>/<namespace>_<name>_<uid>``."""

    def __init__(self, pod: Any, sandbox_root: Path, base_env: Mapping[str, str],
                 lookup: DataLookup, report: Reporter,
                 extra_env: Mapping[str, str] | None = None,
                 credentials: Credentials | None = None) -> None:
        self.pod = pod
        meta = pod.metadata
        self.key = f"{meta.namespace}/{meta.name}"
        self.sandbox = sandbox_root / f"{meta.namespace}_{meta.name}_{meta.uid}"
        self.base_env, self.extra_env = dict(base_env), dict(extra_env or {})
        self.lookup, self.report = lookup, report
        self.credentials = credentials
        self.init_runs = [ContainerRun(c.name, c.image or "")
                          for c in pod.spec.init_containers or []]
        self.runs = [ContainerRun(c.name, c.image or "") for c in pod.spec.containers]
        self.started = now()
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = False
        self.terminal = False  # set just before Succeeded or Failed is reported

    # -- lifecycle ---------------------------------------------------------------------
    def run(self) -> None:
        """Run the pod to completion (or until ``terminate``), reporting as it goes."""
        try:
            self.sandbox.mkdir(parents=True, exist_ok=True)
            self._run()
        except Exception as exc:  # the pod fails, the agent goes on
            log.exception("pod %s: runner failed", self.key)
            self._report("Failed", reason="NodeAgentError", message=str(exc))
        finally:
            self.done.set()

    def _run(self) -> None:
        spec = self.pod.spec
        if spec.restart_policy not in (None, "Never"):
            log.warning("pod %s: restartPolicy %s is run as Never by the node agent",
                        self.key, spec.restart_policy)
        try:
            if self.credentials is not None and spec.automount_service_account_token is not False:
                self.extra_env.update(self.credentials(self.pod, self.sandbox))
            plans = [self._plan(c) for c in [*(spec.init_containers or []), *spec.containers]]
        except ConfigError as exc:
            self._report("Failed", reason="CreateContainerConfigError", message=str(exc))
            return
        init_plans, main_plans = plans[:len(self.init_runs)], plans[len(self.init_runs):]
        self._report("Pending")
        for run, plan in zip(self.init_runs, init_plans, strict=True):
            self._start(run, *plan)
            self._wait(run, *plan)
            if not run.succeeded:
                self._report("Failed", reason="InitContainerFailed",
                             message=f"init container {run.name} exited with {run.exit_code}")
                return
        for run, plan in zip(self.runs, main_plans, strict=True):
            self._start(run, *plan)
        self._report("Running")
        waiters = [threading.Thread(target=self._wait_and_report, args=(run, *plan),
                                    daemon=True)
                   for run, plan in zip(self.runs, main_plans, strict=True)]
        for t in waiters:
            t.start()
        for t in waiters:
            t.join()
        phase = "Succeeded" if all(r.succeeded for r in self.runs) else "Failed"
        self._report(phase)

    def _plan(self, container: Any) -> tuple[Any, list[str], dict[str, str]]:
        extra = {**self.extra_env,
                 TERMINATION_ENV: str(self.sandbox / f"{container.name}.termination-log")}
        env = container_env(self.pod, container, self.base_env, self.lookup, extra)
        return container, command_line(container, env), env

    def _start(self, run: ContainerRun, container: Any, argv: list[str],
               env: dict[str, str]) -> None:
        with self._lock:
            if self._stopping:
                run.started = run.finished = now()
                run.exit_code, run.reason = 137, "Killed"
                return
            workdir = container.working_dir
            if not workdir or not Path(workdir).is_dir():
                workdir = str(self.sandbox)
            with open(self.sandbox / f"{run.name}.log", "ab") as out:
                try:
                    proc = subprocess.Popen(argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
                except OSError as exc:
                    run.started = run.finished = now()
                    run.exit_code, run.reason, run.message = 128, "StartError", str(exc)
                    return
            self._procs[run.name] = proc
            run.pid, run.started = proc.pid, now()
            log.info("pod %s: container %s started (pid %d): %s",
                     self.key, run.name, proc.pid, argv)

    def _wait(self, run: ContainerRun, container: Any, _argv: list[str],
              env: dict[str, str]) -> None:
        proc = self._procs.get(run.name)
        if proc is None:
            return
        code = proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)  # like a container's cgroup: nothing outlives it
        run.exit_code = code if code >= 0 else 128 - code  # killed by signal n: 128 + n
        run.finished = now()
        message = _read_message(Path(env[TERMINATION_ENV]))
        if not message and code != 0 and \
                container.termination_message_policy == "FallbackToLogsOnError":
            message = _log_tail(self.sandbox / f"{run.name}.log")
        run.message = message
        log.info("pod %s: container %s exited with %s", self.key, run.name, run.exit_code)

    def _wait_and_report(self, run: ContainerRun, container: Any, argv: list[str],
                         env: dict[str, str]) -> None:
        self._wait(run, container, argv, env)
        if any(r.running for r in self.runs):
            self._report("Running")

    def _report(self, phase: str, reason: str = "", message: str = "") -> None:
        if self._stopping:
            return  # the pod is being deleted: the agent finishes it
        if phase in ("Succeeded", "Failed"):
            self.terminal = True
        status = pod_status(self.pod, phase, self.init_runs, self.runs, self.started,
                            reason, message)
        try:
            self.report(status)
        except Exception:
            log.exception("pod %s: status update to %s failed", self.key, phase)

    # -- deletion ------------------------------------------------------------------------
    def terminate(self, grace: float) -> None:
        """SIGTERM every container process group, SIGKILL what is left after ``grace``."""
        with self._lock:
            self._stopping = True
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
