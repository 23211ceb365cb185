"""Child processes of the local cluster: start detached, log to files, stop by pid."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ProcessRecord:
    """What is needed to find and stop a process started earlier, possibly by another process."""

    name: str
    pid: int
    executable: str
    log: str

    def alive(self) -> bool:
        """True while the pid still runs ``executable`` (guards against pid reuse)."""
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        state = stat.rsplit(")", 1)[1].split()[0]
        # argv[0], or argv[1] for a script run by its interpreter (a console-script entry
        # point: /usr/bin/python3 /path/to/qbackbone ...)
        argv = cmdline.split(b"\0", 2)[:2]
        return state != "Z" and self.executable.encode() in argv


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: the child only calls it


def _parent_death_signal(sig: int) -> Callable[[], None]:
    """A preexec function: the child gets ``sig`` when the starting process dies."""

    def preexec() -> None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return preexec


def start(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    die_signal: int | None = None,
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start ``argv`` in its own session, stdout and stderr appended to ``<log_dir>/<name>.log``.

    With ``die_signal`` the process gets that signal when the starting process dies (test
    sessions killed before their teardown runs); without, it outlives it (``dev cluster up``).
    """
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_parent_death_signal(die_signal) if die_signal else None,
        )
    return proc, ProcessRecord(name, proc.pid, argv[0], str(log_path))


def stop(record: ProcessRecord, proc: subprocess.Popen[bytes] | None = None,
         grace: float = 10.0) -> None:
    """SIGTERM the process, SIGKILL it after ``grace`` seconds, and reap it if it is ours."""
    if proc is not None and proc.poll() is not None:
        return
    if proc is None and not record.alive():  # our own child cannot be a reused pid
        return
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return
        if proc is None and not record.alive():
            return
        time.sleep(0.05)
    os.kill(record.pid, signal.SIGKILL)
    if proc is not None:
        proc.wait()
    else:
        while record.alive():
            time.sleep(0.05)


def tail(path: str | Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file (empty if it does not exist)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
