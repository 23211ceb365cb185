"""The job history in a SQLite file: bounded by age and count, exported and imported as
JSON lines.

One table, one row per finished job (its record as JSON, with the columns queries need).
WAL journaling lets a reader (``qbackbone history export``) run beside a writer; every
write is one short transaction. The file is created private to its user (0600, directory
0700): records name jobs and QPUs.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qbackbone.core.history.record import JobRecord

ENV_PATH = "QBACKBONE_HISTORY"
DEFAULT_MAX_AGE_SECONDS = 30 * 86_400.0
DEFAULT_MAX_JOBS = 10_000
MAX_LINE_BYTES = 1 << 20  # one record in an import file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    finished_at REAL NOT NULL,
    policy TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_finished_at ON jobs (finished_at);
"""


def default_path() -> Path:
    """``$QBACKBONE_HISTORY``, else ``$XDG_STATE_HOME/qbackbone/history.sqlite3``, else
    ``~/.local/state/qbackbone/history.sqlite3``."""
    given = os.environ.get(ENV_PATH)
    if given:
        return Path(given).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "qbackbone" / "history.sqlite3"


@dataclass(frozen=True)
class Retention:
    """How much history is kept: records younger than ``max_age_seconds``, at most
    ``max_jobs`` of them (the newest)."""

    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS
    max_jobs: int = DEFAULT_MAX_JOBS


class HistoryStore:
    """Finished jobs in a SQLite file (``:memory:`` for tests and replays)."""

    def __init__(self, path: Path | str, retention: Retention | None = None,
                 shared: bool = False) -> None:
        """``shared``: the connection may be used from several threads (the operator's
        handlers); the caller then serialises the calls."""
        self.path = str(path)
        self.retention = retention or Retention()
        if self.path != ":memory:":
            folder = Path(self.path).parent
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not Path(self.path).exists():
                Path(self.path).touch(mode=0o600)
        self._db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=not shared)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._revision = 0

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def revision(self) -> tuple[int, int]:
        """Changes when records are added or removed (for caches of what was learned)."""
        row = self._db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM jobs").fetchone()
        return int(row[0]), int(row[1])

    def append(self, record: JobRecord) -> bool:
        """Add a record; False when one with its key is already stored."""
        with self._db:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO jobs (key, finished_at, policy, record) "
                "VALUES (?, ?, ?, ?)",
                (record.key, record.finished_at, record.policy,
                 json.dumps(record.to_dict(), allow_nan=False, separators=(",", ":"))))
        return cursor.rowcount == 1

    def count(self) -> int:
        """Records stored."""
        return self.revision[0]

    def recent(self, limit: int | None = None, policy: str | None = None,
               namespace: str | None = None) -> list[JobRecord]:
        """The newest records first (of one policy, and of its namespace, when given)."""
        query = "SELECT record FROM jobs"
        args: list[object] = []
        where = []
        if policy is not None:
            where.append("policy = ?")
            args.append(policy)
        if namespace is not None:
            where.append("json_extract(record, '$.namespace') = ?")
            args.append(namespace)
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY finished_at DESC, id DESC"
        if limit is not None:
            query += " LIMIT ?"
            args.append(int(limit))
        return [JobRecord.from_dict(json.loads(row[0]))
                for row in self._db.execute(query, args)]

    def prune(self, now: float) -> int:
        """Drop records older than the retention's age and beyond its count; how many."""
        with self._db:
            old = self._db.execute("DELETE FROM jobs WHERE finished_at < ?",
                                   (now - self.retention.max_age_seconds,)).rowcount
            extra = self._db.execute(
                "DELETE FROM jobs WHERE id NOT IN (SELECT id FROM jobs ORDER BY finished_at "
                "DESC, id DESC LIMIT ?)", (self.retention.max_jobs,)).rowcount
        return int(old) + int(extra)

    def reset(self) -> int:
        """Forget every record (learning returns to nominal); how many were dropped."""
        with self._db:
            return int(self._db.execute("DELETE FROM jobs").rowcount)

    def _rows(self) -> Iterator[str]:
        yield from (row[0] for row in self._db.execute(
            "SELECT record FROM jobs ORDER BY finished_at, id"))

    def export_jsonl(self, path: Path) -> int:
        """Write every record, oldest first, one JSON object per line; how many."""
        n = 0
        with open(path, "w", encoding="utf-8") as out:
            for text in self._rows():
                out.write(text + "\n")
                n += 1
        return n

    def import_jsonl(self, path: Path) -> tuple[int, int]:
        """Add the records of a JSON lines file (checked line by line, all or nothing);
        (added, already present). ValueError naming the first bad line."""
        records: list[JobRecord] = []
        with open(path, "rb") as src:
            for number, raw in enumerate(src, start=1):
                if len(raw) > MAX_LINE_BYTES:
                    raise ValueError(f"{path}:{number}: line longer than {MAX_LINE_BYTES} bytes")
                if not raw.strip():
                    continue
                try:
                    records.append(JobRecord.from_dict(json.loads(raw.decode("utf-8"))))
                except (ValueError, TypeError, UnicodeDecodeError) as err:
                    raise ValueError(f"{path}:{number}: {err}") from None
        added = sum(self.append(r) for r in records)
        return added, len(records) - added
