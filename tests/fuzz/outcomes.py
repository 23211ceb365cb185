"""What every fuzz input must satisfy, and the tally of what happened across the run.

A test body never raises on a bad outcome: it records it, so one run counts every outcome
and keeps, for each distinct problem, the shortest input that shows it. The test then
asserts, once, that its category has no problems (and lists them when it has).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.fuzz.client import INPUT_SECONDS, MEMORY_MIB

REASON = re.compile(r"^[A-Z][A-Za-z0-9]+$")
FINAL_PHASES = ("Succeeded", "Failed")
# Text that means an error escaped as a stack trace or parser internals.
INTERNALS = ("Traceback (most recent call last)", "panicked at", "Result::unwrap()")
_KEEP = 5
# Reading manifests needs a few MiB; an input refused at load that needs more than this has
# expanded something (an alias bomb printed into a message, say).
LOAD_MEMORY_MIB = 64


@dataclass(frozen=True)
class Problem:
    """A broken promise: its kind, and the detail that tells two problems apart."""

    kind: str
    detail: str


@dataclass
class Example:
    """The shortest input seen for one problem, and what happened to it."""

    category: str
    problem: Problem
    text: str
    happened: str
    seen: int = 1
    others: list[str] = field(default_factory=list)  # a few more inputs with this problem


@dataclass
class Tally:
    """Counts by outcome, the slowest and largest inputs, and every problem found."""

    inputs: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    slowest: list[tuple[float, str, str]] = field(default_factory=list)
    largest: list[tuple[float, str, str]] = field(default_factory=list)
    examples: dict[tuple[str, Problem], Example] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)  # the shortest input per outcome

    def count(self, category: str, outcome: str, text: str) -> None:
        label = f"{category}: {outcome}"
        self.outcomes[label] += 1
        if label not in self.samples or len(text) < len(self.samples[label]):
            self.samples[label] = text

    def measure(self, category: str, text: str, seconds: float, rss_mib: float) -> None:
        short = _one_line(text, 160)
        for board, value in ((self.slowest, seconds), (self.largest, rss_mib)):
            board.append((value, category, short))
            board.sort(key=lambda item: -item[0])
            del board[_KEEP:]

    def problem(self, category: str, problem: Problem, text: str, happened: str) -> None:
        key = (category, problem)
        known = self.examples.get(key)
        if known is None:
            self.examples[key] = Example(category, problem, text, happened)
            return
        known.seen += 1
        if len(text) < len(known.text):
            known.text, known.happened, text = text, happened, known.text
        if len(known.others) < 2 and text != known.text and text not in known.others:
            known.others.append(text)

    def problems_of(self, category: str) -> list[Example]:
        return [e for (c, _), e in self.examples.items() if c == category]

    def report(self) -> dict[str, Any]:
        return {
            "inputs": dict(self.inputs), "total_inputs": sum(self.inputs.values()),
            "outcomes": dict(sorted(self.outcomes.items())),
            "shortest_input_per_outcome": dict(sorted(self.samples.items())),
            "slowest": [{"seconds": s, "category": c, "input": t} for s, c, t in self.slowest],
            "largest": [{"rss_growth_mib": m, "category": c, "input": t}
                        for m, c, t in self.largest],
            "problems": [{"category": e.category, "kind": e.problem.kind,
                          "detail": e.problem.detail, "seen": e.seen, "input": e.text,
                          "happened": e.happened, "other_inputs": e.others}
                         for e in self.examples.values()],
        }


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _detail(message: str) -> str:
    """A message with numbers and quoted names blurred, to group equal problems."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    return re.sub(r"\d+", "N", text)[:90]


def job_problems(job: dict[str, Any]) -> list[tuple[Problem, str]]:
    """What is wrong with one job's record (empty when the job behaved)."""
    found: list[tuple[Problem, str]] = []
    phase, reason, status = job.get("phase"), job.get("reason"), job.get("status", "")
    message = _failed_message(status)
    if job.get("serialise_error"):
        found.append((Problem("status cannot be serialised", job["serialise_error"][:60]),
                      job["serialise_error"]))
    if phase not in FINAL_PHASES:
        found.append((Problem("not final", str(phase)), f"phase {phase}"))
    elif phase == "Failed" and not reason:
        found.append((Problem("failed without a reason", ""), status[:300]))
    elif reason and not REASON.match(reason):
        found.append((Problem("reason not CamelCase", reason), f"reason {reason!r}"))
    if reason == "InternalError":
        found.append((Problem("InternalError", _detail(message)), message))
    if not job.get("strict", True):
        found.append((Problem("status is not strict JSON", ""), status[:300]))
    marker = next((m for m in INTERNALS if m in status), None)
    if marker:
        found.append((Problem("internals in the status", marker), message or status[:300]))
    return found


def _failed_message(status: str) -> str:
    try:
        conditions = json.loads(status).get("conditions", [])
    except ValueError:
        return ""
    return next((c.get("message", "") for c in conditions if c.get("type") == "Failed"), "")


def answer_problems(answer: dict[str, Any], secrets: tuple[str, ...],
                    expect_job: bool) -> list[tuple[Problem, str]]:
    """Everything wrong with one worker answer: the run as a whole, then each job."""
    found: list[tuple[Problem, str]] = []
    if answer.get("hang"):
        found.append((Problem("time", f"no answer within {INPUT_SECONDS:g} s"),
                      "killed after the time bound"))
    if answer.get("crash"):
        found.append((Problem("process crash", answer["crash"]),
                      answer["crash"] + ": " + answer.get("stderr", "")[-600:]))
    if answer.get("escaped"):
        last = answer["escaped"].strip().splitlines()[-1]
        found.append((Problem("exception escaped", _detail(last)), answer["escaped"][-1500:]))
    if answer.get("elapsed", 0.0) > INPUT_SECONDS and not answer.get("hang"):
        found.append((Problem("time", f"over {INPUT_SECONDS:g} s"), f"{answer['elapsed']} s"))
    ran = any(job.get("loaded", True) for job in answer.get("jobs", []))
    bound = MEMORY_MIB if ran else LOAD_MEMORY_MIB
    if answer.get("rss_growth_mib", 0.0) > bound:
        what = "" if ran else " while only loading manifests"
        found.append((Problem("memory", f"over {bound} MiB{what}"),
                      f"RSS grew {answer['rss_growth_mib']} MiB in {answer.get('elapsed')} s"))
    stderr = answer.get("stderr", "")
    marker = next((m for m in INTERNALS if m in stderr), None)
    if marker:
        found.append((Problem("internals on stderr", marker), _around(stderr, marker)))
    text = json.dumps(answer)
    for secret in secrets:
        if secret in text:
            found.append((Problem("file contents leaked", secret[:12]), _around(text, secret)))
    ended = answer.get("jobs") or answer.get("skipped") or answer.get("refused")
    quiet = not (answer.get("hang") or answer.get("crash") or answer.get("escaped"))
    if expect_job and not ended and quiet:
        found.append((Problem("job vanished", ""), "no status, no skip, no refusal"))
    for job in answer.get("jobs", []):
        found.extend(job_problems(job))
    return found


def _around(text: str, needle: str) -> str:
    at = text.find(needle)
    return text[max(at - 200, 0): at + 400]


def outcome_labels(answer: dict[str, Any]) -> list[str]:
    """One label per job (and per refused run or skipped document) for the counts."""
    labels = []
    if answer.get("refused"):
        labels.append("refused-at-load (whole run)")
    labels += ["refused-at-load (skipped document)"] * len(answer.get("skipped", []))
    for job in answer.get("jobs", []):
        if not job.get("loaded", True):
            labels.append(f"refused-at-load/{job.get('reason')}")
        elif job.get("phase") == "Succeeded":
            labels.append("Succeeded")
        else:
            labels.append(f"{job.get('phase')}/{job.get('reason')}")
    for flag in ("hang", "crash", "escaped"):
        if answer.get(flag):
            labels.append(f"harness: {flag}")
    return labels
