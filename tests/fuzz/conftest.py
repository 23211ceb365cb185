"""Fixtures of the fuzz tier and its report: counts by outcome, slowest and largest inputs.

The report goes to the end of the terminal output and, as JSON, to $QB_FUZZ_REPORT or
fuzz-report.json in pytest's base temporary directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz.client import FuzzWorker
from tests.fuzz.harness import TALLY, Fuzzer, Planted, plant

_REPORT_PATH: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _report_path(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where the JSON report goes: $QB_FUZZ_REPORT, else pytest's base temporary directory."""
    base = tmp_path_factory.getbasetemp()
    _REPORT_PATH.append(Path(os.environ.get("QB_FUZZ_REPORT") or base / "fuzz-report.json"))


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    """Secret files beside the jobs' working directory."""
    return plant(tmp_path_factory.mktemp("fuzz") / "planted")


@pytest.fixture(scope="session")
def fuzzer(tmp_path_factory: pytest.TempPathFactory, planted: Planted) -> Iterator[Fuzzer]:
    """The worker that runs inputs in forked children (see tests/fuzz/worker.py)."""
    work = tmp_path_factory.mktemp("fuzz-inputs")
    worker = FuzzWorker(work / "worker.log")
    worker.start()
    try:
        yield Fuzzer(worker, planted, work)
    finally:
        worker.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fuzz report: inputs, outcomes, slowest and largest, and problems found."""
    if not TALLY.inputs:
        return
    report = TALLY.report()
    write = terminalreporter.write_line
    terminalreporter.section("fuzz tier")
    write(f"inputs: {report['total_inputs']} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(report['inputs'].items()))})")
    write("outcomes:")
    for label, count in report["outcomes"].items():
        write(f"  {count:5d}  {label}")
    write("slowest:")
    for item in report["slowest"]:
        write(f"  {item['seconds']:7.2f} s  [{item['category']}] {item['input'][:100]}")
    write("largest (peak RSS growth of the job's process):")
    for item in report["largest"]:
        write(f"  {item['rss_growth_mib']:7.1f} MiB  [{item['category']}] {item['input'][:100]}")
    write(f"problems: {len(report['problems'])} distinct")
    for item in report["problems"]:
        write(f"  [{item['category']}] {item['kind']} ({item['detail']}) x{item['seen']}")
    if not _REPORT_PATH:
        return
    path = _REPORT_PATH[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
    write(f"report: {path}")
