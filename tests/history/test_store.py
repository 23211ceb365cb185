"""The SQLite history: append, dedupe, retention by age and count, export, import, reset."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from qbackbone.core.history.record import JobRecord
from qbackbone.core.history.store import HistoryStore, Retention, default_path
from tests.history.builders import record


def test_records_round_trip_through_a_file_and_are_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "state" / "history.sqlite3"
    with HistoryStore(path) as store:
        assert store.append(record("a", at=1.0)) and store.append(record("b", at=2.0))
        assert not store.append(record("a", at=1.0))  # same job, same finish: once
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with HistoryStore(path) as again:  # durable: a new process sees the same records
        newest = again.recent()
        assert [r.name for r in newest] == ["b", "a"] and newest[1] == record("a", at=1.0)
        assert [r.name for r in again.recent(policy="other")] == []


def test_retention_drops_old_records_then_the_oldest_beyond_the_count() -> None:
    with HistoryStore(":memory:", Retention(max_age_seconds=100.0, max_jobs=3)) as store:
        for i in range(6):
            store.append(record(f"j{i}", at=float(i * 30)))  # 0, 30, ..., 150
        assert store.prune(now=160.0) == 3  # j0 (age 160) by age, then j1 and j2 by count
        assert [r.name for r in store.recent()] == ["j5", "j4", "j3"]


def test_export_import_and_reset(tmp_path: Path) -> None:
    out = tmp_path / "h.jsonl"
    with HistoryStore(":memory:") as store:
        for i in range(3):
            store.append(record(f"j{i}", at=float(i)))
        assert store.export_jsonl(out) == 3
        assert store.reset() == 3 and store.count() == 0
        assert store.import_jsonl(out) == (3, 0)
        assert store.import_jsonl(out) == (0, 3)
        assert [r.name for r in store.recent()] == ["j2", "j1", "j0"]
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["name"] == "j0"


@pytest.mark.parametrize("change, message", [
    ({"finished_at": "soon"}, "finished_at"),
    ({"fragments": [{"qpu": "a"}]}, "shots"),
    ({"surprise": 1}, "unknown field"),
    ({"features": {"qubits": "many"}}, "features"),
    ({"schema": 99}, "schema"),
])
def test_import_refuses_a_bad_line_and_adds_nothing(tmp_path: Path, change: dict[str, object],
                                                   message: str) -> None:
    good = record("ok").to_dict()
    bad = {**record("bad", at=5.0).to_dict(), **change}
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n")
    with HistoryStore(":memory:") as store:
        with pytest.raises(ValueError, match=f"bad.jsonl:3: .*{message}"):
            store.import_jsonl(src)
        assert store.count() == 0
    with pytest.raises(ValueError):
        JobRecord.from_dict([1, 2])


def test_default_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv("QBACKBONE_HISTORY", str(tmp_path / "x.sqlite3"))
    assert default_path() == tmp_path / "x.sqlite3"
    monkeypatch.delenv("QBACKBONE_HISTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "qbackbone" / "history.sqlite3"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_path() == Path.home() / ".local/state/qbackbone/history.sqlite3"
