"""Grammar-based OpenQASM 2 and 3 sources: valid statements mixed with hostile ones.

A source is a header, declarations and a list of statements. Most statements are valid
(small registers, known gates, finite angles) so that many circuits get as far as running;
the hostile ones are what issue 14 lists: includes of other files, huge registers, integers
past 2^64, nested doubling gate definitions, loops, opaque gates, unbound or infinite
parameters, unterminated comments and strings, deep brackets, look-alike characters, token
soup, and separators the pre-parse scan and the parser may read differently (a carriage
return ends a line comment for the OpenQASM 3 grammar).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

BIG_INTEGERS = ("18446744073709551616", "18446744073709551617", "99999999999999999999",
                "1" + "0" * 399, "1_000_000_000_000", "4294967296", "2147483648", "1000001",
                "10000", "1001", "1000")
HUGE_ANGLES = ("1e999", "-1e999", "1e308*10", "1e-400", "0/0", "1/0", "ln(0)", "sqrt(-1)",
               "pi" + "*pi" * 300, "1" + "0" * 400, "1e308", "nan", "inf", "π")
LOOKALIKES = ("\u0131nclude", "qreg q[\uff12];", "\uff48 q[0];", "qr\u0435g q[1];",
              "h q[\u0661];", "OPENQASM\u00a03.0;", "\ufeffOPENQASM 2.0;", "cx q[0],\uff51[1];")
SOUP = ("OPENQASM", "include", "qreg", "creg", "qubit", "bit", "gate", "opaque", "measure",
        "reset", "barrier", "if", "else", "for", "while", "in", "const", "uint", "float",
        "input", "output", "def", "defcal", "cal", "box", "ctrl", "pow", "inv", "@", "->", "==",
        "{", "}", "(", ")", "[", "]", ";", ",", ":", "q", "c", "h", "cx", "U", "pi", "0", "1",
        "2.5", "1e999", '"', "'", "/*", "*/", "//", "\r", "\n", "\x00", "$0", "#", "\\")
SEPARATORS = (" ", "\n", "\r\n", "\r", "\t", "\f", "\v", "\u2028", "\x85", "  ")


def hostile_includes(version: int, secret_paths: Sequence[str]) -> st.SearchStrategy[str]:
    """include statements naming other files: absolute, relative, system, odd quoting."""
    targets = [*secret_paths, "/etc/passwd", "/proc/self/environ", "../../../../etc/passwd",
               "qelib1.inc/../../etc/passwd", "./qelib1.inc", "QELIB1.INC", "qelib1.inc ",
               "stdgates.inc" if version == 2 else "qelib1.inc", "", "/dev/zero",
               "/dev/urandom", "file:///etc/passwd", "qelib1.inc\x00/etc/passwd"]
    quoted = st.sampled_from(targets).flatmap(lambda t: st.sampled_from(
        [f'include "{t}";', f"include '{t}';", f'include"{t}";', f'include "{t}"',
         f"include {t};", f'// x\rinclude "{t}";\n']))
    return st.one_of(quoted, st.just('include "qelib1.inc'), st.just("include ;"))


def _angle(hostile: bool) -> st.SearchStrategy[str]:
    fine = st.one_of(st.floats(-7, 7, allow_nan=False).map(lambda x: f"{x:.6g}"),
                     st.sampled_from(["pi/2", "-pi/4", "0", "2*pi", "pi", "0.1"]))
    return st.one_of(fine, st.sampled_from(HUGE_ANGLES)) if hostile else fine


@st.composite
def valid_statement(draw: st.DrawFn, version: int, n: int) -> str:
    """A statement that parses on registers q[n] and c[n] and runs on an ideal QPU."""
    i = draw(st.integers(0, n - 1))
    j = draw(st.integers(0, n - 1).filter(lambda k: k != i)) if n > 1 else i
    angle = draw(_angle(False))
    one = draw(st.sampled_from(["h", "x", "y", "z", "s", "t", "sdg", "tdg", "sx"]))
    choices = [f"{one} q[{i}];", f"rz({angle}) q[{i}];", f"rx({angle}) q[{i}];",
               f"u3({angle},0,{angle}) q[{i}];" if version == 2 else f"U({angle},0,0) q[{i}];",
               "barrier q;", f"h q[{i}];"]
    if n > 1:
        choices += [f"cx q[{i}],q[{j}];", f"cz q[{i}],q[{j}];", f"swap q[{i}],q[{j}];"]
    if version == 3:
        choices += [f"for uint k in [0:{draw(st.integers(0, 3))}] {{ x q[{i}]; }}",
                    f"ctrl @ x q[{i}], q[{j}];" if n > 1 else f"inv @ s q[{i}];",
                    f"pow(2) @ x q[{i}];", f"c[{i}] = measure q[{i}];",
                    f"if (c[{i}]) {{ x q[{i}]; }}"]
    else:
        choices += [f"measure q[{i}] -> c[{i}];", f"if (c=={draw(st.integers(0, 3))}) x q[{i}];",
                    f"reset q[{i}];"]
    return draw(st.sampled_from(choices))


def _doubling_gates(depth: int, width: int) -> str:
    """Gate g_k calls g_{k-1} `width` times: width^depth operations once unrolled."""
    lines = ["gate g0 a { h a; }"]
    for k in range(1, depth + 1):
        body = " ".join([f"g{k - 1} a;"] * width)
        lines.append(f"gate g{k} a {{ {body} }}")
    lines.append(f"g{depth} q[0];")
    return "\n".join(lines)


@st.composite
def hostile_statement(draw: st.DrawFn, version: int, n: int,
                      secret_paths: Sequence[str]) -> str:
    """One statement from the list of things a circuit must not be able to do."""
    big = draw(st.sampled_from(BIG_INTEGERS))
    depth = draw(st.integers(1, 400))
    reg = "qreg r[{}];" if version == 2 else "qubit[{}] r;"
    kinds = [
        draw(hostile_includes(version, secret_paths)),
        reg.format(big),
        ("creg d[{}];" if version == 2 else "bit[{}] d;").format(big),
        f"h q[{big}];", f"rz({big}) q[0];", f"U({draw(_angle(True))},0,0) q[0];",
        f"rz({draw(_angle(True))}) q[0];",
        _doubling_gates(draw(st.integers(2, 45)), draw(st.integers(2, 3))),
        "opaque blackbox a;\nblackbox q[0];",
        "rz(" + "(" * depth + "1" + ")" * depth + ") q[0];",
        "rz(" + "-" * draw(st.integers(1, 12_000)) + "1) q[0];",
        "rz(" + "+".join(["1"] * draw(st.integers(1, 3000))) + ") q[0];",
        "/* never closed", '"never closed', "h q[0]; /* a */ */ h q[0];",
        draw(st.sampled_from(LOOKALIKES)),
        "gate self a { self a; }\nself q[0];", "gate g a { h b; }\ng q[0];",
        "gate wide(" + ",".join(f"p{k}" for k in range(300)) + ") a { }",
        "h q[0]" * draw(st.integers(2, 2000)),
        f"// hidden\r{reg.format(big)}\n", f"'{reg.format(big)}'",
    ]
    if version == 3:
        kinds += [
            f"for uint i in [0:{big}] {{ h q[0]; }}",
            "for uint i in [0:100000] { for uint j in [0:100000] { h q[0]; } }",
            "for int i in [0:0:10] { h q[0]; }", "for uint i in {1, 2, 3} { x q[0]; }",
            "while (c[0]) { h q[0]; }", "while (true) { h q[0]; }",
            "input float theta;\nrz(theta) q[0];", "input angle[32] t;\nU(t, 0, 0) q[0];",
            f"pow({big}) @ x q[0];", f"pow({draw(_angle(True))}) @ h q[0];",
            f"ctrl({big}) @ x q[0], q[0];", f"const uint N = {big};\nqubit[N] r;",
            f"int[64] big = {big};", f"array[int[32], {big}] a;", f"delay[{big}s] q[0];",
            "def f(qubit a) { h a; }\nf(q[0]);", "defcal x $0 { }", "cal { }",
            "box { h q[0]; }", "extern f(int) -> int;", "let alias = q[0:1];",
            f"qubit[{big}]", "bit[4] b = \"1010\";", "measure q;", "reset q;",
            "switch (1) { case 1 { x q[0]; } default { } }",
        ]
    else:
        kinds += ["if (c==18446744073709551617) x q[0];", "measure q -> c;",
                  "U(0,0,0,0) q[0];", "cx q[0],q[0];", f"barrier q[{big}];",
                  f"qreg q[{n}];", "gate h a { x a; }"]
    return draw(st.sampled_from(kinds))


@st.composite
def qasm_source(draw: st.DrawFn, secret_paths: Sequence[str],
                hostile: float = 0.4) -> tuple[str, int]:
    """(source, qubits): a circuit of 1-3 qubits with a share of hostile statements."""
    version = draw(st.sampled_from([2, 3]))
    n = draw(st.integers(1, 3))
    if draw(st.integers(0, 19)) == 0:  # pure token soup, now and then
        soup = draw(st.lists(st.sampled_from(SOUP), min_size=1, max_size=80))
        return " ".join(soup), n
    header = draw(st.sampled_from(
        [f"OPENQASM {version}.0;", f"OPENQASM {version};", f"OPENQASM {version}.0; // v",
         "OPENQASM 99999999999999999999.0;" if draw(st.integers(0, 30)) == 0
         else f"OPENQASM {version}.0;"]))
    include = 'include "qelib1.inc";' if version == 2 else 'include "stdgates.inc";'
    decl = (f"qreg q[{n}];\ncreg c[{n}];" if version == 2 else f"qubit[{n}] q;\nbit[{n}] c;")
    count = draw(st.integers(0, 12))
    body = []
    for _ in range(count):
        if draw(st.floats(0, 1)) < hostile:
            body.append(draw(hostile_statement(version, n, secret_paths)))
        else:
            body.append(draw(valid_statement(version, n)))
    sep = draw(st.sampled_from(SEPARATORS[:3])) if draw(st.integers(0, 4)) else \
        draw(st.sampled_from(SEPARATORS))
    return sep.join([header, include, decl, *body]), n


def observables_for(n: int) -> st.SearchStrategy[list[Any] | None]:
    """Pauli strings for n qubits (None: a sampling job), now and then odd ones."""
    pauli = st.text(alphabet="IXYZ", min_size=n, max_size=n)
    usual: st.SearchStrategy[list[Any] | None] = st.one_of(
        st.none(), st.lists(pauli, min_size=1, max_size=4))
    odd: st.SearchStrategy[list[Any] | None] = st.sampled_from(
        [["z" * n], ["\uff3a" * n], ["Z" * (n + 1)], [""], ["I" * n], ["Z" * n] * 5000,
         ["X" * n + "\n"], [None], ["Z" * n, 5], [], ["Z" * 400], [("XYZ" * n)[:n]] * 2])
    return st.integers(0, 9).flatmap(lambda k: odd if k == 0 else usual)
