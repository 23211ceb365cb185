"""dev/procs: a process started through a script (a console-script entry point: the kernel runs
its interpreter, so the command line starts with python) is recognised and stopped, with or
without its Popen (it was waited on forever, unsignalled)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from qbackbone.dev import procs


def script(tmp_path: Path) -> Path:
    path = tmp_path / "sleeper"
    path.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(120)\n")
    path.chmod(0o755)
    return path


def test_a_script_is_alive_and_stops_with_its_popen(tmp_path: Path) -> None:
    proc, record = procs.start("sleeper", [str(script(tmp_path))], tmp_path)
    deadline = time.monotonic() + 10
    while not record.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.alive()
    started = time.monotonic()
    procs.stop(record, proc, grace=5)
    assert proc.poll() is not None and time.monotonic() - started < 5
    assert not record.alive()


def test_a_script_stops_from_its_record_alone(tmp_path: Path) -> None:
    proc, record = procs.start("sleeper", [str(script(tmp_path))], tmp_path)
    deadline = time.monotonic() + 10
    while not record.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    procs.stop(record, None, grace=5)  # as another process would, from the state file
    assert proc.wait(timeout=10) is not None
