"""A user's CSV telemetry: read back exactly, hostile input refused before work."""

from __future__ import annotations

import numpy as np
import pytest

from qbackbone.core.optimize.problem import ProblemError, ProblemTooLarge
from qbackbone.core.telemetry import csvinput
from qbackbone.core.telemetry.csvinput import read_csv, to_csv
from qbackbone.core.telemetry.generate import GeneratorOptions, generate
from tests.telemetry.test_generate import abilene


def test_round_trip_of_generated_telemetry() -> None:
    tel = generate(abilene(), GeneratorOptions(seed=5, days=2, anomalies=2))
    back = read_csv(to_csv(tel), 60)
    assert back.links == tel.links
    assert np.allclose(back.link_values, tel.link_values, rtol=1e-5)
    assert back.labels is not None and np.array_equal(back.labels, tel.labels)


def test_plain_series_without_time_or_labels() -> None:
    tel = read_csv("a,b\n1,2\n3,4\n5,6\n7,8\n", 15)
    assert tel.links == ["a", "b"] and tel.labels is None and tel.step_minutes == 15
    assert tel.link_values.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]


@pytest.mark.parametrize(("text", "words"), [
    ("", "empty"),
    ("a,a\n1,2\n1,2\n1,2\n1,2", "twice"),
    ("time,anomaly\n1,0\n2,0\n3,0\n4,1", "no series"),
    ("a,b\n1,2\n3\n", "row 3 has 1 cells"),
    ("a\n1\nnan\n1\n1", "finite"),
    ("a\n1\ninf\n1\n1", "finite"),
    ("a\n1\n1e400\n1\n1", "finite"),
    ("a\n1\nx\n1\n1", "not a number"),
    ("a,anomaly\n1,0\n1,2\n1,0\n1,0", "labels are 0 or 1"),
    ("a\n1\n2", "at least 4"),
    ("a\n1\x00\n2\n3\n4", "NUL"),
])
def test_broken_csv_is_refused_with_a_reason(text: str, words: str) -> None:
    with pytest.raises(ProblemError, match=words):
        read_csv(text, 60)


def test_limits_are_checked_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProblemTooLarge, match="characters"):
        read_csv("a\n" + "1\n" * (csvinput.MAX_CSV_CHARS // 2 + 1), 60)
    with pytest.raises(ProblemTooLarge, match="lines"):
        read_csv("a\n" + "\n" * (csvinput.MAX_ROWS + 5), 60)
    header = ",".join(f"c{k}" for k in range(csvinput.MAX_COLUMNS + 3))
    with pytest.raises(ProblemTooLarge, match="columns"):
        read_csv(header + "\n", 60)

    def boom(*_: object) -> float:
        raise AssertionError("parsed a cell")

    monkeypatch.setattr(csvinput, "_number", boom)
    with pytest.raises(ProblemTooLarge):
        read_csv("a\n" + "1\n" * (csvinput.MAX_ROWS + 5), 60)
