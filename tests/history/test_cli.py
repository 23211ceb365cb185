"""qbackbone run records jobs in the history file; qbackbone history exports, imports and
resets it."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbackbone.cli.main import main
from qbackbone.core.history.store import HistoryStore

MANIFESTS = """\
apiVersion: qbackbone.io/v1alpha1
kind: QPUNode
metadata: {name: sim}
spec:
  backend: {provider: aer, name: aer_simulator}
  qubits: 4
---
apiVersion: qbackbone.io/v1alpha1
kind: InvocationPolicy
metadata: {name: default}
spec:
  learning: {enabled: true, minSamples: 2}
---
apiVersion: qbackbone.io/v1alpha1
kind: QuantumJob
metadata: {name: bell}
spec:
  circuit:
    qasm: |
      OPENQASM 2.0;
      include "qelib1.inc";
      qreg q[2];
      h q[0]; cx q[0],q[1];
    observables: [ZZ]
  shots: 200
"""


def test_run_records_then_learns_and_history_commands_work(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           ) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(MANIFESTS)
    db = tmp_path / "h.sqlite3"
    common = ["--history", str(db)]
    for _ in range(3):
        assert main(["run", str(jobs), "-q", "--no-isolation", "-o", "json", *common]) == 0
    out = capsys.readouterr().out
    assert "learnedShotTimeFactor" in out  # the third run used what the first two taught
    with HistoryStore(db) as store:
        records = store.recent()
    assert len(records) == 3 and records[0].fragments[0].qpu == "sim"
    assert records[0].learned and not records[-1].learned
    export = tmp_path / "h.jsonl"
    assert main(["history", "export", str(export), *common]) == 0
    assert main(["history", "reset", *common]) == 0
    assert main(["run", str(jobs), "-q", "--no-isolation", "-o", "json", *common]) == 0
    assert "learnedShotTimeFactor" not in capsys.readouterr().out  # reset: nominal again
    assert main(["history", "import", str(export), *common]) == 0
    with HistoryStore(db) as store:
        assert store.count() == 4
    assert main(["history", "import", *common]) == 2
    assert main(["run", str(jobs), "-q", "--no-isolation", "--no-history"]) == 0
    with HistoryStore(db) as store:
        assert store.count() == 4
