"""Parse OpenQASM 2 and 3 into Qiskit circuits, with errors a person can act on.

Every limit is checked before the work it limits: the source's version, includes, declared
registers and bracket nesting by a lexical scan (``qasm_scan``) before a parser runs; the
unrolled size, gate nesting, loops and parameters (``expansion``) before any
transpiler or simulator does.
"""

from __future__ import annotations

import re

from qiskit import QuantumCircuit, qasm2, qasm3

from qbackbone.api.conditions import Reason
from qbackbone.api.limits import JobLimits
from qbackbone.core.circuits.expansion import ExpansionLimits, expanded_size
from qbackbone.core.circuits.qasm_scan import ScanLimits, scan_qasm
from qbackbone.core.errors import JobFailure

_UNDEFINED = re.compile(r"'?([A-Za-z_][\w]*)'? is not defined|gate '([^']+)' is not defined")
_GATE_CLASS = re.compile(r"(\w+?)(?:Gate)?\.__init__\(\)")
_MAX_PARSER_MESSAGE = 300


def _used_as_gate(source: str, name: str) -> bool:
    """Whether ``name`` starts a statement (a gate call) rather than being an operand."""
    return re.search(rf"(^|;|\{{)\s*{re.escape(name)}\s*[\s(]", source, re.MULTILINE) is not None


def _syntax_position(err: BaseException) -> str | None:
    """Where the OpenQASM 3 grammar stopped: its ANTLR error is chained, not in the message."""
    seen: BaseException | None = err
    for _ in range(5):
        seen = seen.__context__ or seen.__cause__ if seen is not None else None
        if seen is None:
            return None
        for candidate in (seen, *seen.args):
            token = getattr(candidate, "offendingToken", None)
            if token is not None:
                found = "end of source" if token.text == "<EOF>" else repr(token.text)
                return f"syntax error at line {token.line}, column {token.column + 1}: " \
                       f"unexpected {found}"
    return None


def _parser_text(err: BaseException) -> str:
    """The parser's own words, trimmed, or where its grammar stopped when it gave none."""
    text = str(err).strip().strip('"').strip("'").strip()
    if not text or text.endswith(":"):
        text = _syntax_position(err) or "syntax error (the parser gave no position)"
    return text[:_MAX_PARSER_MESSAGE]


def _parse(source: str, version: int) -> QuantumCircuit:
    if version == 3:
        return qasm3.loads(source)
    # include_path=() : qelib1.inc is built into the parser; nothing is read from disk even
    # if the scan were bypassed.
    return qasm2.loads(source, include_path=(),
                       custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS, strict=False)


def _explain(err: BaseException, source: str, version: int) -> JobFailure:
    if isinstance(err, TypeError):  # a gate class built with the wrong arguments
        gate = _GATE_CLASS.search(str(err))
        name = gate.group(1).lower() if gate else "a gate"
        return JobFailure(
            Reason.INVALID_CIRCUIT,
            f"OpenQASM {version}: {name} is called with the wrong number of parameters or "
            "qubits; check the call against the gate's definition",
        )
    text = _parser_text(err)
    undefined = _UNDEFINED.search(text)
    if undefined:
        name = undefined.group(1) or undefined.group(2)
        if _used_as_gate(source, name):
            return JobFailure(
                Reason.UNKNOWN_GATE,
                f"OpenQASM {version}: gate {name!r} is not defined ({text}); define it with "
                f"a 'gate' block or use a {'qelib1.inc' if version == 2 else 'stdgates.inc'} "
                "gate",
            )
        return JobFailure(
            Reason.INVALID_CIRCUIT,
            f"OpenQASM {version}: {name!r} is used but never declared ({text}); declare the "
            "register or fix the name",
        )
    return JobFailure(Reason.INVALID_CIRCUIT, f"cannot parse OpenQASM {version}: {text}")


def parse_qasm(source: str, limits: JobLimits | None = None) -> QuantumCircuit:
    """Parse OpenQASM 2 (qelib1.inc built in) or 3 (stdgates.inc) within the job's limits."""
    limits = limits or JobLimits()
    size = len(source.encode("utf-8", errors="replace"))
    if size > limits.max_circuit_bytes:
        raise JobFailure(Reason.INPUT_TOO_LARGE,
                         f"the circuit source is {size} bytes; the limit is "
                         f"{limits.max_circuit_bytes} (policy spec.limits.maxCircuitBytes)")
    version = scan_qasm(source, ScanLimits(max_qubits=limits.max_declared_qubits,
                                           max_clbits=limits.max_classical_bits,
                                           max_nesting=limits.max_bracket_nesting,
                                           max_operations=limits.max_operations))
    try:
        circuit = _parse(source, version)
    except JobFailure:
        raise
    except RecursionError:
        raise JobFailure(Reason.INPUT_TOO_LARGE,
                         f"OpenQASM {version}: the circuit nests too deeply to parse; "
                         "simplify its expressions") from None
    except MemoryError:
        raise JobFailure(Reason.INPUT_TOO_LARGE,
                         f"OpenQASM {version}: the circuit is too large to parse") from None
    except BaseException as err:  # pyo3's PanicException is a BaseException
        if isinstance(err, KeyboardInterrupt | SystemExit):
            raise
        raise _explain(err, source, version) from None
    if circuit.num_qubits == 0:
        raise JobFailure(Reason.INVALID_CIRCUIT, "the circuit declares no qubits")
    expanded_size(circuit, ExpansionLimits(max_operations=limits.max_operations,
                                           max_gate_nesting=limits.max_gate_nesting))
    return circuit
