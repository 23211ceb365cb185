"""The fuzz tier's shared machinery: planted secrets, settings, and one run per input."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, seed, settings

from tests.fuzz.client import INPUT_SECONDS, FuzzWorker
from tests.fuzz.gen_values import Tree, render_all
from tests.fuzz.outcomes import Tally, answer_problems, outcome_labels

F = TypeVar("F", bound=Callable[..., Any])
TALLY = Tally()  # the whole run's counts, reported by conftest.pytest_terminal_summary
PASSWD_MARKER = "root:x:0:0"


def fuzz_settings(examples: int) -> Callable[[F], F]:
    """Fixed seed, no example database, a per-example deadline past the input bound.

    Shrinking is off: the test bodies record problems rather than fail, so there is nothing
    to shrink, and a slow input shrunk many times would blow the tier's time budget.
    For exploring beyond the fixed run: QB_FUZZ_SEED=<n> draws other inputs (still
    reproducible) and QB_FUZZ_SCALE=<k> multiplies the number of examples.
    """
    other_seed = os.environ.get("QB_FUZZ_SEED")
    scaled = max(1, round(examples * float(os.environ.get("QB_FUZZ_SCALE", "1"))))
    chosen = settings(derandomize=other_seed is None, database=None, max_examples=scaled,
                      deadline=timedelta(seconds=INPUT_SECONDS + 40),
                      suppress_health_check=list(HealthCheck), print_blob=False,
                      phases=(Phase.explicit, Phase.generate))

    def apply(test: F) -> F:
        test = chosen(test)
        return seed(int(other_seed))(test) if other_seed is not None else test

    return apply


@dataclass(frozen=True)
class Planted:
    """Files a job must never read: each holds a token that must never appear in output."""

    root: Path
    cwd: Path  # where jobs run: relative includes resolve against it
    token: str

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.token, PASSWD_MARKER)

    @property
    def include_paths(self) -> list[str]:
        """The planted files by absolute and relative path."""
        return [str(self.root / "secret.inc"), str(self.cwd / "qelib1.inc"), "secret.inc",
                "../secret.inc", "./qelib1.inc", "../../planted/secret.inc", "stdgates.inc",
                str(self.cwd / "stdgates.inc")]


def plant(root: Path) -> Planted:
    """Write the secret files: a bogus secret.inc, and shadow qelib1.inc / stdgates.inc."""
    token = "QBFUZZSECRET" + uuid.uuid4().hex
    cwd = root / "cwd"
    cwd.mkdir(parents=True)
    # Each file is a syntax error that starts with the token: a parser that read it would
    # most likely quote it in its error message.
    text = f"{token} {token}(;\ngate {token} a {{ }}\n{token} q;\n"
    for path in (root / "secret.inc", cwd / "secret.inc", cwd / "qelib1.inc",
                 cwd / "stdgates.inc", root / "secret.yaml"):
        path.write_text(text)
    return Planted(root, cwd, token)


class Fuzzer:
    """Writes each input to a file, runs it in the worker, and records what happened."""

    def __init__(self, worker: FuzzWorker, planted: Planted, workdir: Path) -> None:
        self.worker = worker
        self.planted = planted
        self.workdir = workdir
        self.serial = 0

    def write(self, data: bytes | str, name: str = "input.yaml") -> Path:
        self.serial += 1
        folder = self.workdir / f"in-{self.serial % 4}"
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        path = folder / name
        path.write_bytes(data.encode("utf-8", errors="surrogatepass")
                         if isinstance(data, str) else data)
        return path

    def run_docs(self, category: str, docs: list[Tree], expect_job: bool = True) -> None:
        """Render documents to one file and run it."""
        self.run_bytes(category, render_all(docs), expect_job)

    def run_bytes(self, category: str, data: bytes | str, expect_job: bool = True) -> None:
        """Run one manifest file's content through load_manifests and run_job.

        A job is expected back (as a status, a skipped document or a refusal) when the
        file still says ``QuantumJob`` after any damage.
        """
        path = self.write(data)
        answer = self.worker.run([path], self.planted.cwd)
        text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
        record(category, text, answer, self.planted.secrets,
               expect_job and "QuantumJob" in text)


def record(category: str, text: str, answer: dict[str, Any], secrets: tuple[str, ...],
           expect_job: bool) -> None:
    """Count one input's outcomes and keep any problem with its input."""
    TALLY.inputs[category] += 1
    for label in outcome_labels(answer):
        TALLY.count(category, label, text)
    TALLY.measure(category, text, float(answer.get("elapsed", 0.0)),
                  float(answer.get("rss_growth_mib", 0.0)))
    for problem, happened in answer_problems(answer, secrets, expect_job):
        TALLY.problem(category, problem, text, happened)
    log = os.environ.get("QB_FUZZ_LOG")  # every input and its answer, one JSON line each
    if log:
        with open(log, "a") as out:
            out.write(json.dumps({"category": category, "input": text,
                                  "labels": outcome_labels(answer), "answer": answer}) + "\n")


def assert_clean(category: str) -> None:
    """Fail, listing each distinct problem with its shortest input, if there were any."""
    examples = TALLY.problems_of(category)
    if not examples:
        return
    lines = [f"{len(examples)} distinct problem(s) in {TALLY.inputs[category]} {category} "
             "inputs (shortest input of each):"]
    for e in sorted(examples, key=lambda e: (e.problem.kind, e.problem.detail)):
        lines.append(f"- {e.problem.kind} [{e.problem.detail}] x{e.seen}\n"
                     f"  input: {e.text[:800]!r}\n  happened: {e.happened[:800]}")
        lines += [f"  also: {other[:400]!r}" for other in e.others]
    raise AssertionError("\n".join(lines))
