"""The worker's result ConfigMaps: what a worker writes and how the operator reads it back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from qbackbone.core.classical.fallback import ClassicalOutcome
from qbackbone.core.mitigation.uncertainty import MitigatedValue

ESTIMATES_KEY = "estimates.json"
MEASURED_KEY = "measured.json"  # per circuit: its clbit count and the qubit each clbit read

MeasuredQubits = tuple[int, dict[int, int]]


def fragment_result_data(qpu: str, backend: str, counts: Sequence[Mapping[str, int]],
                         seconds: float, pod: str | None, started: float | None = None,
                         finished: float | None = None,
                         fidelity: float | None = None,
                         estimates: Sequence[MitigatedValue] | None = None,
                         measured: Sequence[MeasuredQubits] | None = None) -> dict[str, str]:
    """Counts per circuit (in the input's order) of one fragment, or (an Estimator fragment,
    no counts) its mitigated value per observable; when the backend call started and
    finished (Unix seconds), the estimated fidelity of its circuits, and which qubit each
    clbit of each compiled circuit read (for readout correction)."""
    data = {"kind": "fragment", "qpu": qpu, "backend": backend, "pod": pod or "",
            "seconds": f"{seconds:.4f}",
            "counts.json": json.dumps([dict(c) for c in counts], sort_keys=True)}
    if estimates is not None:
        data[ESTIMATES_KEY] = json.dumps(
            [{"value": v.value, "stdError": v.std_error, "systematicError": v.systematic_error,
              "method": v.method} for v in estimates], sort_keys=True)
    if measured is not None:
        data[MEASURED_KEY] = json.dumps([[width, {str(c): q for c, q in sorted(m.items())}]
                                         for width, m in measured])
    for key, value in (("started", started), ("finished", finished), ("fidelity", fidelity)):
        if value is not None:
            data[key] = f"{value:.6f}"
    return data


def classical_result_data(outcome: ClassicalOutcome, seconds: float,
                          pod: str | None) -> dict[str, str]:
    """Expectation values or counts of the classical fallback."""
    return {"kind": "classical", "pod": pod or "", "seconds": f"{seconds:.4f}",
            "outcome.json": json.dumps({"values": outcome.values, "counts": outcome.counts,
                                        "method": outcome.method}, sort_keys=True)}


def fragment_counts(data: Mapping[str, str]) -> list[dict[str, int]]:
    """Counts per circuit from a fragment result."""
    return [{str(k): int(v) for k, v in c.items()} for c in json.loads(data["counts.json"])]


def fragment_estimates(data: Mapping[str, str]) -> list[MitigatedValue] | None:
    """Mitigated values per observable from an Estimator fragment's result; None for a
    counts fragment. ValueError when they are malformed."""
    text = data.get(ESTIMATES_KEY)
    if text is None:
        return None
    try:
        values = [MitigatedValue(float(v["value"]), float(v["stdError"]),
                                 float(v["systematicError"]), str(v["method"]))
                  for v in json.loads(text)]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"malformed {ESTIMATES_KEY}: {type(err).__name__}: {err}") from None
    return values


def fragment_measured(data: Mapping[str, str]) -> list[MeasuredQubits] | None:
    """Per circuit its clbit count and the qubit each clbit read; None when the worker did
    not say (an Estimator fragment, or a result from before readout correction).
    ValueError when malformed."""
    text = data.get(MEASURED_KEY)
    if text is None:
        return None
    try:
        return [(int(width), {int(c): int(q) for c, q in mapping.items()})
                for width, mapping in json.loads(text)]
    except (AttributeError, TypeError, ValueError) as err:
        raise ValueError(f"malformed {MEASURED_KEY}: {type(err).__name__}: {err}") from None


def classical_outcome(data: Mapping[str, str]) -> ClassicalOutcome:
    """The classical outcome from its result."""
    raw = json.loads(data["outcome.json"])
    return ClassicalOutcome(values=raw["values"], counts=raw["counts"], method=raw["method"])


def seconds(data: Mapping[str, str]) -> float:
    """How long the worker's backend call took."""
    return float(data.get("seconds") or 0.0)
