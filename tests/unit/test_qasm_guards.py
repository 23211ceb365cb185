"""Named regressions of issue 14 for circuits: refused before the work, with a reason."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qbackbone.api.conditions import Reason
from qbackbone.api.limits import JobLimits
from qbackbone.core.circuits.parse import parse_qasm
from qbackbone.core.errors import JobFailure

V2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
V3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def _nested(levels: int) -> str:
    lines = [V2, "gate g0 a { h a; }"]
    lines += [f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}" for i in range(1, levels + 1)]
    return "\n".join([*lines, "qreg q[1];", f"g{levels} q[0];"])


def _refused(source: str, reason: Reason, limits: JobLimits | None = None) -> str:
    start = time.perf_counter()
    with pytest.raises(JobFailure) as caught:
        parse_qasm(source, limits)
    assert time.perf_counter() - start < 5, "a refusal must come before the work"
    assert caught.value.reason == reason, caught.value.message
    return caught.value.message


@pytest.mark.parametrize("target", ["/etc/passwd", "pyproject.toml", "../shared/DESIGN.md",
                                    "qelib1.inc/../../etc/hostname", "stdgates.inc"])
def test_openqasm2_include_of_anything_but_qelib1_is_refused(target: str) -> None:
    message = _refused(f'OPENQASM 2.0;\ninclude "{target}";\nqreg q[1];\nh q[0];',
                       Reason.FORBIDDEN_INCLUDE)
    assert "root:" not in message and "line 2" in message


def test_openqasm3_include_of_a_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.inc"
    secret.write_text("gate leaked-secret-token a { h a; }\n")
    message = _refused(f'OPENQASM 3.0;\ninclude "{secret}";\nqubit[1] q;\nh q[0];',
                       Reason.FORBIDDEN_INCLUDE)
    assert "leaked-secret-token" not in message


def test_an_include_hidden_behind_a_comment_is_still_seen() -> None:
    _refused('OPENQASM 2.0;\n/* x */ include /* y */ "/etc/passwd";\nqreg q[1];',
             Reason.FORBIDDEN_INCLUDE)


def test_the_standard_libraries_and_comments_mentioning_include_are_fine() -> None:
    assert parse_qasm(V2 + '// include "/etc/passwd";\nqreg q[1];\nh q[0];').num_qubits == 1
    assert parse_qasm(V3 + "qubit[2] q;\nh q[0];\ncx q[0], q[1];").num_qubits == 2


@pytest.mark.parametrize("source", [
    V2 + "qreg q[100000000];\nh q[0];",
    V3 + "qubit[100000000] q;\nh q[0];",
    V3 + "const uint n = 100000000;\nqubit[n] q;",
    V2 + "qreg a[600];\nqreg b[600];",
])
def test_oversized_registers_are_refused_before_parsing(source: str) -> None:
    _refused(source, Reason.INPUT_TOO_LARGE)


def test_a_size_past_2_to_the_64_is_refused_not_a_rust_panic() -> None:
    _refused(V2 + "qreg q[18446744073709551616];\nh q[0];", Reason.INVALID_CIRCUIT)


def test_nested_doubling_gate_definitions_are_measured_not_expanded() -> None:
    message = _refused(_nested(20), Reason.INPUT_TOO_LARGE)
    assert "maxOperations" in message
    assert parse_qasm(_nested(8)).num_qubits == 1  # 256 operations: fine


def test_gate_nesting_deeper_than_the_limit_is_refused() -> None:
    lines = [V2, "gate g0 a { h a; }"] + [f"gate g{i} a {{ g{i - 1} a; }}" for i in range(1, 40)]
    _refused("\n".join([*lines, "qreg q[1];", "g39 q[0];"]), Reason.INPUT_TOO_LARGE)


@pytest.mark.parametrize("source", [
    V3 + "qubit[1] q;\nfor int i in [0:1000000000] { h q[0]; }",
    V3 + "qubit[1] q;\nfor int i in [0:1000] { for int j in [0:1000] { h q[0]; } }",
])
def test_loops_are_counted_in_full(source: str) -> None:
    _refused(source, Reason.INPUT_TOO_LARGE)


def test_while_loops_are_refused() -> None:
    source = V3 + "qubit[1] q;\nbit c;\nc = measure q[0];\nwhile (c) { h q[0]; c = measure q[0]; }"
    assert "while" in _refused(source, Reason.UNSUPPORTED_OPERATION)


def test_policy_limits_can_raise_a_default() -> None:
    raised = JobLimits(max_operations=2_000_000)
    assert parse_qasm(_nested(20), raised).num_qubits == 1


@pytest.mark.parametrize("source", [
    V2 + "qreg q[1];\nrx(1e400) q[0];",
    V2 + "qreg q[1];\nrx(1e308*10) q[0];",
])
def test_non_finite_parameters_are_refused(source: str) -> None:
    assert "finite" in _refused(source, Reason.INVALID_CIRCUIT)


def test_opaque_gates_are_refused() -> None:
    _refused(V2 + "opaque foo a;\nqreg q[1];\nfoo q[0];", Reason.UNKNOWN_GATE)


def test_deep_brackets_are_refused_before_the_parser_recurses() -> None:
    _refused(V2 + "qreg q[1];\nrx(" + "(" * 5000 + "1" + ")" * 5000 + ") q[0];",
             Reason.INVALID_CIRCUIT)


@pytest.mark.parametrize(("source", "expected"), [
    (V3 + "qubit[1] q;\nh q[0]", "line 4, column 7"),
    (V2 + "qreg q[1];\nrx q[0];", "wrong number of parameters"),
    (V3 + "qubit[1] q;\nrx q[0];", "wrong number of parameters"),
    ("OPENQASM 2.0;\n/* never closed\nqreg q[1];", "never closed"),
])
def test_syntax_errors_say_where_and_leak_no_python_internals(source: str, expected: str) -> None:
    message = _refused(source, Reason.INVALID_CIRCUIT)
    assert expected in message
    assert "__init__" not in message and "Traceback" not in message


def test_the_source_size_limit_comes_first() -> None:
    _refused(V2 + "qreg q[1];\n" + "h q[0];\n" * 200_000, Reason.INPUT_TOO_LARGE)


def test_register_sizes_may_be_integer_expressions() -> None:
    assert parse_qasm(V3 + "qubit[(2+3)*2] q;\nh q[0];").num_qubits == 10
    _refused(V3 + "qubit[1000*1000] q;", Reason.INPUT_TOO_LARGE)
    _refused(V3 + "qubit[x] q;", Reason.INVALID_CIRCUIT)


def test_carriage_return_ends_a_line_comment_as_the_grammar_says() -> None:
    _refused(V3 + "qubit[1] q;\n// x\rqubit[100000] big;\nh q[0];", Reason.INPUT_TOO_LARGE)
    _refused("OPENQASM 3.0;\n// x\rinclude \"/etc/passwd\";\nqubit[1] q;",
             Reason.FORBIDDEN_INCLUDE)


@pytest.mark.parametrize("source", [
    V2 + "qreg q[2];\nh q[18446744073709551617];",
    V3 + "qubit[1] q;\nrz(1" + "0" * 400 + ") q[0];",
])
def test_integers_past_64_bits_are_refused_anywhere(source: str) -> None:
    assert "too large" in _refused(source, Reason.INVALID_CIRCUIT)


def test_openqasm3_definitions_are_sized_before_the_importer_unrolls_them() -> None:
    lines = [V3, "qubit[1] q;", "gate g0 a { h a; }"]
    lines += [f"gate g{k} a {{ g{k - 1} a; g{k - 1} a; g{k - 1} a; }}" for k in range(1, 12)]
    _refused("\n".join(lines), Reason.INPUT_TOO_LARGE)  # never called: still 14 s to import
    _refused(V3 + "qubit[1] q;\ngate g a { pow(1000000) @ h a; }\ng q[0];",
             Reason.INPUT_TOO_LARGE)


def test_box_is_refused_as_unsupported() -> None:
    _refused(V3 + "qubit[1] q;\nbox { h q[0]; }", Reason.UNSUPPORTED_OPERATION)


@pytest.mark.parametrize("modifier", ["ctrl(2147483648)", "negctrl(4294967296)",
                                      "ctrl(n)"])
def test_control_counts_past_the_qubit_limit_are_refused_before_the_importer(
        modifier: str) -> None:
    """The importer adds a huge ctrl(n)'s controls one by one: 21 s for 2^31 (fuzz-found)."""
    source = V3 + "const uint n = 5000;\nqubit[1] q;\n" + f"{modifier} @ x q[0], q[0];"
    assert "control qubits" in _refused(source, Reason.INPUT_TOO_LARGE)
