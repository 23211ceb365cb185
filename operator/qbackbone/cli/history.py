"""Job history for ``qbackbone run`` and ``qbackbone history export|import|reset|show``.

``qbackbone run`` records every finished job in a local SQLite file (``--history``,
``$QBACKBONE_HISTORY``, default ``~/.local/state/qbackbone/history.sqlite3``; ``--no-history``
to turn it off), keeps it within ``--history-max-age`` and ``--history-max-jobs``, and hands
each job what its policy learned when the policy's ``learning.enabled`` is true. A history
that cannot be opened or written is reported on stderr and never fails a job.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qbackbone.api.common import parse_duration
from qbackbone.api.policy import InvocationPolicy, InvocationPolicySpec
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus

if TYPE_CHECKING:  # imported where used: `qbackbone --version` must not load Qiskit
    from qbackbone.core.history import HistoryStore
    from qbackbone.core.learning import LearnedModel
    from qbackbone.core.qpus.fleet import QPU

# Defaults of core/history/store.py (tests/history checks they agree), here so that building
# the command line imports no Qiskit.
DEFAULT_MAX_AGE_SECONDS = 30 * 86_400.0
DEFAULT_MAX_JOBS = 10_000


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """--history, --history-max-age, --history-max-jobs."""
    parser.add_argument("--history", type=Path, default=None,
                        help=f"job history file (default: ${'QBACKBONE_HISTORY'} or "
                        "~/.local/state/qbackbone/history.sqlite3)")
    parser.add_argument("--history-max-age", type=parse_duration,
                        default=DEFAULT_MAX_AGE_SECONDS,
                        help="forget jobs older than this (default 30 days, e.g. 7d, 12h)")
    parser.add_argument("--history-max-jobs", type=int, default=DEFAULT_MAX_JOBS,
                        help=f"keep at most this many jobs (default {DEFAULT_MAX_JOBS})")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The history options of ``qbackbone run``."""
    add_store_options(parser)
    parser.add_argument("--no-history", action="store_true",
                        help="neither record jobs nor learn from earlier ones")


def open_store(args: argparse.Namespace) -> HistoryStore:
    """The store the options name."""
    from qbackbone.core.history import HistoryStore, Retention, default_path

    return HistoryStore(args.history or default_path(),
                        Retention(args.history_max_age, args.history_max_jobs))


class RunHistory:
    """The history of one ``qbackbone run``: learned models per policy, records of jobs."""

    def __init__(self, store: HistoryStore | None, fleet: Sequence[QPU]) -> None:
        self.store = store
        self.fleet = {q.name: q.descriptor for q in fleet}

    def learned_for(self, policy: InvocationPolicy | None) -> LearnedModel | None:
        """What the policy learned so far (None when it does not learn or no history)."""
        spec = policy.spec if policy is not None else InvocationPolicySpec()
        if self.store is None or not spec.learning.enabled:
            return None
        try:
            limit = min(spec.learning.window * max(len(self.fleet), 1) * 2,
                        self.store.retention.max_jobs)
            name = policy.metadata.name if policy is not None else None
            from qbackbone.core.learning import learn

            return learn(self.store.recent(limit, policy=name), spec.learning, time.time())
        except Exception as err:  # learning never fails a job: it runs nominal
            _warn(f"cannot learn from the history ({err}); deciding with nominal values")
            return None

    def record(self, job: QuantumJob, status: QuantumJobStatus) -> None:
        """Record a finished job (never raises)."""
        if self.store is None:
            return
        from qbackbone.core.history import record_from_status

        try:
            self.store.append(record_from_status(job, status, self.fleet, datetime.now(UTC)))
        except Exception as err:
            _warn(f"cannot record {job.metadata.name} in the history ({err})")

    def close(self) -> None:
        """Apply retention and close."""
        if self.store is None:
            return
        try:
            self.store.prune(time.time())
            self.store.close()
        except Exception as err:
            _warn(f"cannot prune the history ({err})")


def run_history(args: argparse.Namespace, fleet: Sequence[QPU]) -> RunHistory:
    """The history ``qbackbone run`` uses (a disabled one on --no-history or errors)."""
    if args.no_history:
        return RunHistory(None, fleet)
    try:
        return RunHistory(open_store(args), fleet)
    except Exception as err:
        _warn(f"cannot open the job history ({err}); jobs are not recorded")
        return RunHistory(None, fleet)


def _warn(text: str) -> None:
    print(f"warning: history: {text}", file=sys.stderr)


def cmd_history(args: argparse.Namespace) -> int:
    """export FILE, import FILE, reset, show."""
    with open_store(args) as store:
        if args.action == "export":
            n = store.export_jsonl(Path(args.file))
            print(f"exported {n} job(s) to {args.file}", file=sys.stderr)
        elif args.action == "import":
            try:
                added, present = store.import_jsonl(Path(args.file))
            except (OSError, ValueError) as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            store.prune(time.time())
            print(f"imported {added} job(s), {present} already present", file=sys.stderr)
        elif args.action == "reset":
            print(f"forgot {store.reset()} job(s): decisions use nominal values again",
                  file=sys.stderr)
        else:
            _show(store, args)
    return 0


def _show(store: HistoryStore, args: argparse.Namespace) -> None:
    from qbackbone.core.learning import learn

    records = store.recent(args.limit)
    spec = InvocationPolicySpec.model_validate({"learning": {"enabled": True}})
    model = learn(records, spec.learning, time.time())
    out: dict[str, Any] = {"path": store.path, "jobs": store.count(),
                           "learnedAdjustments (default learning bounds)": model.adjustments(),
                           "problemClasses": {c: o.describe() for c, o in
                                              sorted(model.classes.items())}}
    for key, value in out.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        else:
            print(f"{key}: {value}")


def register(sub: Any) -> None:
    """``qbackbone history``."""
    parser = sub.add_parser("history", help="export, import, reset or show the job history "
                            "qbackbone run records and learns from")
    parser.add_argument("action", choices=["export", "import", "reset", "show"])
    parser.add_argument("file", nargs="?", help="JSON lines file (export, import)")
    parser.add_argument("--limit", type=int, default=1000, help="show: newest jobs read")
    add_store_options(parser)
    parser.set_defaults(func=_checked)


def _checked(args: argparse.Namespace) -> int:
    if args.action in ("export", "import") and not args.file:
        print(f"error: history {args.action} needs a FILE", file=sys.stderr)
        return 2
    return cmd_history(args)
