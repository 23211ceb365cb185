"""Job history: a record per finished job, kept in a bounded SQLite store."""

from qbackbone.core.history.collect import problem_class, record_from_status
from qbackbone.core.history.record import FragmentRecord, JobRecord
from qbackbone.core.history.store import HistoryStore, Retention, default_path

__all__ = ["FragmentRecord", "HistoryStore", "JobRecord", "Retention", "default_path",
           "problem_class", "record_from_status"]
