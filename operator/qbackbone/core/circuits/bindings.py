"""Many circuits as one parametrised template and a table of parameter values.

A detect job's kernel needs thousands of fidelity circuits that differ only in their angles.
Compiled for a wide device, one circuit is about 20 KB of QPY; the template and one row of
values per circuit (about 200 bytes for 4 qubits) is what a fragment's input ConfigMap can
carry. The worker binds the rows back into circuits (``bind_rows``), checking the table
before it builds anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from qiskit import QuantumCircuit

BINDINGS_KEY = "bindings.json"
MAX_ROWS = 50_000  # circuits per fragment; the ConfigMap limit is reached well before


class BindingsError(ValueError):
    """The bindings table does not fit its template."""


def bindings_text(parameters: Sequence[str], rows: Sequence[Sequence[float]]) -> str:
    """The table as stored: parameter names (the template's) and one row per circuit."""
    return json.dumps({"parameters": list(parameters),
                       "values": [[float(v) for v in row] for row in rows]},
                      separators=(",", ":"))


def bind_rows(template: QuantumCircuit, text: str) -> list[QuantumCircuit]:
    """One circuit per row of ``text``: the template with that row's values bound.

    BindingsError when the table is malformed, names parameters the template does not have
    (or misses some), has rows of the wrong width or non-finite values, or is too long.
    """
    try:
        table = json.loads(text)
        names, rows = table["parameters"], table["values"]
    except (TypeError, ValueError, KeyError) as err:
        raise BindingsError(f"malformed {BINDINGS_KEY}: {type(err).__name__}: {err}") from None
    if not isinstance(names, list) or not isinstance(rows, list):
        raise BindingsError(f"{BINDINGS_KEY}: parameters and values must be lists")
    if len(rows) > MAX_ROWS:
        raise BindingsError(f"{BINDINGS_KEY}: {len(rows)} rows, at most {MAX_ROWS}")
    by_name = {p.name: p for p in template.parameters}
    if sorted(map(str, names)) != sorted(by_name):
        raise BindingsError(f"{BINDINGS_KEY}: parameters {names[:8]} are not the template's "
                            f"({sorted(by_name)[:8]})")
    params = [by_name[str(n)] for n in names]
    out = []
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(params) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in row):
            raise BindingsError(f"{BINDINGS_KEY}: row {index} is not {len(params)} finite "
                                "numbers")
        out.append(template.assign_parameters(dict(zip(params, row, strict=True))))
    return out
