"""A user's own telemetry: CSV text, checked before and while it is parsed.

Limits come first: the text's size, then its row count (newlines), then the header's column
count, then every cell (length, a finite number within range; labels 0 or 1). Nothing is
parsed beyond the first broken cell, whose row and column the error names.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator

import numpy as np

from qbackbone.core.optimize.problem import ProblemError, ProblemTooLarge
from qbackbone.core.telemetry.model import Telemetry

MAX_CSV_CHARS = 2 * 1024 * 1024  # a ConfigMap holds at most 1 MiB
MAX_ROWS = 20_000
MAX_COLUMNS = 512
MAX_CELL_CHARS = 64
MAX_NAME_CHARS = 253
MAX_ABS_VALUE = 1e15
MIN_ROWS = 4


def _check_sizes(text: str) -> None:
    if len(text) > MAX_CSV_CHARS:
        raise ProblemTooLarge(f"the telemetry CSV has {len(text):,} characters, above the limit "
                              f"of {MAX_CSV_CHARS:,}: send fewer steps or series")
    rows = text.count("\n") + 1
    if rows > MAX_ROWS + 2:  # header, a trailing newline
        raise ProblemTooLarge(f"the telemetry CSV has {rows:,} lines, above the limit of "
                              f"{MAX_ROWS:,} rows: send fewer steps (a coarser step)")


def _number(cell: str, row: int, column: str) -> float:
    text = cell.strip()
    if len(text) > MAX_CELL_CHARS:
        raise ProblemError(f"telemetry CSV row {row}, column {column!r}: a cell of "
                           f"{len(text)} characters is not a number")
    try:
        value = float(text)
    except ValueError:
        raise ProblemError(f"telemetry CSV row {row}, column {column!r}: {text[:20]!r} is not "
                           "a number") from None
    if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        raise ProblemError(f"telemetry CSV row {row}, column {column!r}: {text[:20]!r} must be "
                           f"a finite number of magnitude at most {MAX_ABS_VALUE:g}")
    return value


def _header(reader: Iterator[list[str]], time_column: str, label_column: str) -> list[str]:
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ProblemError("the telemetry CSV is empty: give a header row and one row per "
                           "step") from None
    if len(header) > MAX_COLUMNS + 2:
        raise ProblemTooLarge(f"the telemetry CSV has {len(header):,} columns, above the limit "
                              f"of {MAX_COLUMNS:,} series")
    for name in header:
        if not name or len(name) > MAX_NAME_CHARS:
            raise ProblemError("every telemetry CSV column needs a name of 1 to "
                               f"{MAX_NAME_CHARS} characters in the header row")
    if len(set(header)) != len(header):
        raise ProblemError("the telemetry CSV header names a column twice")
    if not [h for h in header if h not in (time_column, label_column)]:
        raise ProblemError("the telemetry CSV has no series column (only time or labels)")
    return header


def read_csv(text: str, step_minutes: int, time_column: str = "time",
             label_column: str = "anomaly") -> Telemetry:
    """Series from CSV text; ProblemError (or ProblemTooLarge) names what is wrong."""
    _check_sizes(text)
    if "\x00" in text:
        raise ProblemError("the telemetry CSV contains NUL characters: send plain text")
    reader = csv.reader(io.StringIO(text))
    try:
        header = _header(reader, time_column, label_column)
        series = [k for k, h in enumerate(header) if h not in (time_column, label_column)]
        label_at = header.index(label_column) if label_column in header else None
        values: list[list[float]] = []
        labels: list[bool] = []
        for row_number, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ProblemError(f"telemetry CSV row {row_number} has {len(row)} cells; the "
                                   f"header has {len(header)}")
            values.append([_number(row[k], row_number, header[k]) for k in series])
            if label_at is not None:
                flag = _number(row[label_at], row_number, label_column)
                if flag not in (0.0, 1.0):
                    raise ProblemError(f"telemetry CSV row {row_number}, column "
                                       f"{label_column!r}: labels are 0 or 1, got {flag:g}")
                labels.append(flag == 1.0)
    except csv.Error as err:
        raise ProblemError(f"the telemetry CSV cannot be read: {err}") from None
    if len(values) < MIN_ROWS:
        raise ProblemError(f"the telemetry CSV has {len(values)} data rows; at least "
                           f"{MIN_ROWS} are needed")
    return Telemetry(step_minutes=step_minutes, links=[header[k] for k in series],
                     link_values=np.array(values, dtype=float),
                     labels=np.array(labels, dtype=bool) if label_at is not None else None,
                     source="csv")


def to_csv(telemetry: Telemetry, which: str = "links", with_labels: bool = True) -> str:
    """The telemetry as CSV text (what read_csv reads back), e.g. for an example job."""
    names, values = telemetry.series(which)
    header = ["time", *names] + (["anomaly"] if with_labels and telemetry.labels is not None
                                 else [])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for k in range(values.shape[0]):
        row = [str(k * telemetry.step_minutes), *(f"{v:.6g}" for v in values[k])]
        if len(header) > len(names) + 1 and telemetry.labels is not None:
            row.append("1" if telemetry.labels[k] else "0")
        writer.writerow(row)
    return out.getvalue()
