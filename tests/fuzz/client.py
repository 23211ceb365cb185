"""The pytest side of the fuzz worker (tests/fuzz/worker.py): start it, send inputs."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from tests.conftest import REPO

# Per input: wall-clock seconds before the child is killed (the time bound asserted), and
# memory beyond the child's starting size, the CLI's default (policy spec.limits).
INPUT_SECONDS = 20.0
MEMORY_MIB = 1536
_STARTUP_SECONDS = 120.0
_MARGIN_SECONDS = 30.0


class WorkerDied(RuntimeError):
    """The worker itself (not a child) stopped answering: a harness failure."""


class FuzzWorker:
    """One long-lived worker process; ``run`` is one input, answered as a dict."""

    def __init__(self, log: Path) -> None:
        self.log_path = log
        self.proc: subprocess.Popen[str] | None = None
        self.log: IO[str] | None = None

    def start(self) -> None:
        self.log = self.log_path.open("a")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), str(REPO / "operator"), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.worker"], cwd=REPO, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        ready = self._read_line(_STARTUP_SECONDS)
        if not json.loads(ready).get("ready"):
            raise WorkerDied(f"the fuzz worker did not start: {ready[:200]}")

    def stop(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def _read_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise WorkerDied(f"the fuzz worker stopped answering (see {self.log_path})")
        return line

    def run(self, files: list[Path], cwd: Path, seconds: float = INPUT_SECONDS,
            memory_mib: int = MEMORY_MIB) -> dict[str, Any]:
        """Load the files and run their jobs in a forked child of the worker."""
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        request = {"files": [str(f) for f in files], "cwd": str(cwd), "timeout": seconds,
                   "memory_mib": memory_mib, "seed": 1}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self._read_line(seconds + _MARGIN_SECONDS))
        return answer
