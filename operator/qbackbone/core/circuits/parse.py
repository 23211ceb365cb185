"""Parse OpenQASM 2 and 3 into Qiskit circuits, with errors a person can act on."""

from __future__ import annotations

import re

from qiskit import QuantumCircuit, qasm2, qasm3

from qbackbone.api.conditions import Reason
from qbackbone.core.errors import JobFailure

MAX_QASM_BYTES = 1_000_000
MAX_QUBITS = 1000
MAX_OPERATIONS = 1_000_000

_VERSION = re.compile(r"^\s*OPENQASM\s+(\d+)(?:\.\d+)?\s*;", re.MULTILINE)
_UNDEFINED = re.compile(r"'?([A-Za-z_][\w]*)'? is not defined|gate '([^']+)' is not defined")


def qasm_version(source: str) -> int:
    """The major OpenQASM version the source declares (2 when it declares none)."""
    stripped = re.sub(r"//[^\n]*", "", source)
    match = _VERSION.search(stripped)
    return int(match.group(1)) if match else 2


def _used_as_gate(source: str, name: str) -> bool:
    """Whether ``name`` starts a statement (a gate call) rather than being an operand."""
    return re.search(rf"(^|;|\{{)\s*{re.escape(name)}\s*[\s(]", source, re.MULTILINE) is not None


def parse_qasm(source: str) -> QuantumCircuit:
    """Parse OpenQASM 2 (qelib1.inc built in) or 3 (stdgates.inc) and check size limits."""
    if len(source.encode()) > MAX_QASM_BYTES:
        raise JobFailure(Reason.INVALID_CIRCUIT,
                         f"the circuit source is larger than {MAX_QASM_BYTES} bytes")
    version = qasm_version(source)
    try:
        if version == 3:
            circuit = qasm3.loads(source)
        elif version == 2:
            circuit = qasm2.loads(
                source,
                custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS,
                strict=False,
            )
        else:
            raise JobFailure(Reason.INVALID_CIRCUIT,
                             f"OPENQASM {version} is not supported: use OpenQASM 2 or 3")
    except JobFailure:
        raise
    except Exception as err:  # the two parsers raise unrelated exception types
        text = str(err).strip().strip('"')
        undefined = _UNDEFINED.search(text)
        if undefined:
            name = undefined.group(1) or undefined.group(2)
            if _used_as_gate(source, name):
                raise JobFailure(
                    Reason.UNKNOWN_GATE,
                    f"OpenQASM {version}: gate {name!r} is not defined ({text}); define it with "
                    f"a 'gate' block or use a {'qelib1.inc' if version == 2 else 'stdgates.inc'} "
                    "gate",
                ) from None
            raise JobFailure(
                Reason.INVALID_CIRCUIT,
                f"OpenQASM {version}: {name!r} is used but never declared ({text}); declare the "
                "register or fix the name",
            ) from None
        raise JobFailure(Reason.INVALID_CIRCUIT,
                         f"cannot parse OpenQASM {version}: {text}") from None
    if circuit.num_qubits == 0:
        raise JobFailure(Reason.INVALID_CIRCUIT, "the circuit declares no qubits")
    if circuit.num_qubits > MAX_QUBITS:
        raise JobFailure(Reason.INVALID_CIRCUIT,
                         f"the circuit has {circuit.num_qubits} qubits; the limit is {MAX_QUBITS}")
    if circuit.size() > MAX_OPERATIONS:
        raise JobFailure(Reason.INVALID_CIRCUIT,
                         f"the circuit has {circuit.size()} operations; the limit is "
                         f"{MAX_OPERATIONS}")
    return circuit
