"""A lexical scan of OpenQASM source, run before any parser sees it.

The parsers trust their input: an ``include`` reads a file, a register of 10^8 qubits is
allocated before anything counts it, and a size past 2^64 panics inside Rust. This scan
reads only tokens, so its cost is linear in the source, and refuses such input first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from qbackbone.api.conditions import Reason
from qbackbone.core.errors import JobFailure

# The only files a circuit may include: the standard gate libraries, which both parsers
# provide built in. Anything else would be read from the operator's file system.
ALLOWED_INCLUDES = {2: frozenset({"qelib1.inc"}), 3: frozenset({"stdgates.inc"})}

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<line_comment>//[^\n\r]*)
      | (?P<block_comment>/\*.*?\*/)
      | (?P<string>"[^"\n]*"|'[^'\n]*')
      | (?P<number>(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)
      | (?P<ident>[A-Za-z_$][A-Za-z0-9_]*)
      | (?P<other>.)""",
    re.VERBOSE | re.DOTALL | re.ASCII,
)
_OPEN, _CLOSE = "([{", ")]}"
_MAX_INTEGER = 2**63 - 1  # the parsers read integers into 64-bit words (qasm2 panics past it)
_MODIFIERS = {"ctrl", "negctrl", "inv", "pow"}
# Qiskit's OpenQASM 3 importer unrolls every gate definition while it parses, at about 4,000
# operations a second here (3^11 calls: 14 s, unused): its definitions get a budget of their own.
V3_DEFINITIONS_BUDGET = 20_000
_QUANTUM_DECL = {"qreg", "qubit"}
_CLASSICAL_DECL = {"creg", "bit"}


@dataclass(frozen=True)
class Token:
    """One token with the line it starts on (1-based) for messages."""

    kind: str
    text: str
    line: int


@dataclass(frozen=True)
class ScanLimits:
    """What the scan enforces; the policy's ``spec.limits`` supplies the values."""

    max_qubits: int
    max_clbits: int
    max_nesting: int
    max_operations: int


def _fail(line: int, message: str, reason: Reason = Reason.INVALID_CIRCUIT) -> JobFailure:
    return JobFailure(reason, f"OpenQASM line {line}: {message}")


def tokens(source: str) -> Iterator[Token]:
    """Tokens without spaces and comments; an unterminated comment or string is an error."""
    line = 1
    for match in _TOKEN.finditer(source):
        kind, text = match.lastgroup or "other", match.group()
        if kind == "other" and text == "/" and source.startswith("/*", match.start()):
            raise _fail(line, "a /* comment is never closed with */")
        if kind == "other" and text in "\"'":
            raise _fail(line, "a string is not closed on the line it starts")
        if kind not in ("space", "line_comment", "block_comment"):
            yield Token(kind, text, line)
        line += text.count("\n")


def _integer(token: Token, what: str) -> int:
    """An integer literal (underscores allowed, as OpenQASM 3 does) or a clear failure."""
    digits = token.text.replace("_", "")
    if token.kind != "number" or not digits.isdigit():
        raise _fail(token.line, f"{what} must be a non-negative integer, got {token.text!r}")
    if len(digits) > 15:
        raise _fail(token.line, f"{what} {digits[:20]}... is far too large")
    return int(digits)


class _Scanner:
    """Walks the token list once, collecting constants and register sizes."""

    def __init__(self, toks: list[Token], version: int, limits: ScanLimits) -> None:
        self.toks = toks
        self.version = version
        self.limits = limits
        self.constants: dict[str, int] = {}
        self.gate_cost: dict[str, int] = {}
        self.definitions_total = 0
        self.qubits = 0
        self.clbits = 0

    def at(self, i: int) -> Token | None:
        return self.toks[i] if i < len(self.toks) else None

    def run(self) -> None:
        depth = 0
        for i, tok in enumerate(self.toks):
            if tok.kind == "other" and tok.text in _OPEN:
                depth += 1
                if depth > self.limits.max_nesting:
                    raise _fail(tok.line, f"brackets nest deeper than {self.limits.max_nesting} "
                                "levels; simplify the expression")
            elif tok.kind == "other" and tok.text in _CLOSE:
                depth = max(depth - 1, 0)
            elif tok.kind == "number":
                digits = tok.text.replace("_", "")
                if digits.isdigit() and (len(digits) > 19 or int(digits) > _MAX_INTEGER):
                    raise _fail(tok.line, f"the integer {digits[:24]}... is too large (at most "
                                f"{_MAX_INTEGER}); write a real number such as 1e20 if an "
                                "angle is meant")
            elif tok.kind == "ident":
                self.statement_word(i, tok)

    def statement_word(self, i: int, tok: Token) -> None:
        if tok.text in ("ctrl", "negctrl"):
            self.control_count(i, tok)
        elif tok.text == "include":
            self.include(i, tok)
        elif tok.text == "gate":
            self.gate_definition(i, tok)
        elif tok.text == "const":
            self.constant(i)
        elif tok.text in _QUANTUM_DECL or tok.text in _CLASSICAL_DECL:
            size = self.declaration_size(i, tok)
            if size is None:
                return
            if tok.text in _QUANTUM_DECL:
                self.qubits += size
                if self.qubits > self.limits.max_qubits:
                    raise _fail(tok.line, f"the circuit declares {self.qubits} or more qubits; "
                                f"the limit is {self.limits.max_qubits} (policy "
                                "spec.limits.maxDeclaredQubits)", Reason.INPUT_TOO_LARGE)
            else:
                self.clbits += size
                if self.clbits > self.limits.max_clbits:
                    raise _fail(tok.line, f"the circuit declares {self.clbits} or more "
                                f"classical bits; the limit is {self.limits.max_clbits} "
                                "(policy spec.limits.maxClassicalBits)", Reason.INPUT_TOO_LARGE)

    def control_count(self, i: int, tok: Token) -> None:
        """``ctrl(n) @``: the importer builds n controls one by one (2^31 took 21 s), so n
        is held to the qubit limit before it runs (no gate can take more qubits)."""
        paren, arg, close = self.at(i + 1), self.at(i + 2), self.at(i + 3)
        if paren is None or paren.text != "(" or arg is None or close is None \
                or close.text != ")":
            return
        if arg.kind == "number" and arg.text.replace("_", "").isdigit():
            count = int(arg.text.replace("_", ""))
        elif arg.kind == "ident" and arg.text in self.constants:
            count = self.constants[arg.text]
        else:
            return
        if count > self.limits.max_qubits:
            raise _fail(tok.line, f"{tok.text}({count}) asks for {count} control qubits; a "
                        f"circuit has at most {self.limits.max_qubits} (policy "
                        "spec.limits.maxDeclaredQubits)", Reason.INPUT_TOO_LARGE)

    def include(self, i: int, tok: Token) -> None:
        target = self.at(i + 1)
        if target is None or target.kind != "string":
            raise _fail(tok.line, "include needs a file name in quotes",
                        Reason.FORBIDDEN_INCLUDE)
        name = target.text[1:-1]
        allowed = ALLOWED_INCLUDES.get(self.version, frozenset())
        if name not in allowed:
            # Name what the job wrote, never anything read from the file.
            raise _fail(tok.line, f"include {target.text} is not allowed: circuits may include "
                        f"only {', '.join(sorted(allowed))}; define the gates in the circuit "
                        "itself", Reason.FORBIDDEN_INCLUDE)

    def gate_definition(self, i: int, tok: Token) -> None:
        """Size a gate's body once unrolled, before a parser expands it.

        OpenQASM 3's importer expands every definition as it parses, so twelve definitions
        that each call the previous one three times take minutes even if never used.
        """
        name = self.at(i + 1)
        j = i + 2
        while (t := self.at(j)) is not None and t.text != "{":
            j += 1
        if name is None or name.kind != "ident" or t is None:
            return
        cost, depth, start = 0, 0, True
        j += 1
        while (t := self.at(j)) is not None:
            if t.text == "}" and depth == 0:
                break
            depth += {"{": 1, "}": -1}.get(t.text, 0)
            if start and t.kind == "ident":
                j, repeats, callee = self.call_at(j)
                cost += repeats * self.gate_cost.get(callee, 1)
                if cost > self.limits.max_operations:
                    raise _fail(tok.line, f"gate {name.text!r} unrolls to more than "
                                f"{self.limits.max_operations} operations; flatten it or raise "
                                "the policy's spec.limits.maxOperations",
                                Reason.INPUT_TOO_LARGE)
                start = False
                continue
            start = t.text in (";", "{", "}")
            j += 1
        self.gate_cost[name.text] = max(cost, 1)
        self.definitions_total += max(cost, 1)
        if self.version == 3 and self.definitions_total > V3_DEFINITIONS_BUDGET:
            raise _fail(tok.line, f"the gate definitions unroll to more than "
                        f"{V3_DEFINITIONS_BUDGET} operations in all; the OpenQASM 3 importer "
                        "expands each one as it parses: flatten them, or write the circuit in "
                        "OpenQASM 2", Reason.INPUT_TOO_LARGE)

    def call_at(self, j: int) -> tuple[int, int, str]:
        """(index after the callee, repetitions from pow(k) modifiers, callee name)."""
        repeats = 1
        while (t := self.at(j)) is not None and t.text in _MODIFIERS:
            j += 1
            if (paren := self.at(j)) is not None and paren.text == "(":
                arg = self.at(j + 1)
                if t.text == "pow" and arg is not None and arg.text.isdigit():
                    repeats *= max(1, min(int(arg.text), self.limits.max_operations + 1))
                while (p := self.at(j)) is not None and p.text != ")":
                    j += 1
                j += 1
            if (at := self.at(j)) is not None and at.text == "@":
                j += 1
        callee = self.at(j)
        return j + 1, repeats, callee.text if callee is not None else ""

    def constant(self, i: int) -> None:
        """``const <type>[...] NAME = <integer>;`` (other constants are not sizes)."""
        j = i + 2
        if (tok := self.at(j)) is not None and tok.text == "[":
            while (tok := self.at(j)) is not None and tok.text != "]":
                j += 1
            j += 1
        name, eq, value, end = self.at(j), self.at(j + 1), self.at(j + 2), self.at(j + 3)
        if (name and eq and value and end and name.kind == "ident" and eq.text == "="
                and value.kind == "number" and end.text == ";"
                and value.text.replace("_", "").isdigit()):
            self.constants[name.text] = _integer(value, f"constant {name.text}")

    def declaration_size(self, i: int, tok: Token) -> int | None:
        """The size a declaration at token i gives, 1 for a single bit, None if not one."""
        nxt = self.at(i + 1)
        if nxt is None:
            return None
        if tok.text in ("qreg", "creg"):  # qreg NAME[size];
            bracket = self.at(i + 2)
            if nxt.kind != "ident" or bracket is None or bracket.text != "[":
                return None
            return self.size_at(i + 3, tok)
        if nxt.text == "[":  # qubit[size] NAME;
            return self.size_at(i + 2, tok)
        if nxt.kind == "ident" and self.version == 3:  # qubit NAME;
            return 1
        return None

    def size_at(self, j: int, decl: Token) -> int:
        """The size between ``[`` and ``]``: integers, earlier integer constants, + - * ()."""
        end = j
        while (tok := self.at(end)) is not None and tok.text != "]" and end - j < 64:
            end += 1
        if self.at(end) is None or end == j:
            raise _fail(decl.line, f"the size of a {decl.text} declaration must be an integer "
                        "expression in brackets")
        return _SizeExpression(self.toks[j:end], self.constants, decl).value()


class _SizeExpression:
    """A tiny recursive-descent evaluator for register sizes (at most 64 tokens)."""

    def __init__(self, toks: list[Token], constants: dict[str, int], decl: Token) -> None:
        self.toks, self.constants, self.decl, self.pos = toks, constants, decl, 0

    def fail(self) -> JobFailure:
        return _fail(self.decl.line, f"the size of a {self.decl.text} declaration must be built "
                     "from integers and constants declared before it as "
                     "'const uint n = <integer>;' with + - * and parentheses")

    def value(self) -> int:
        result = self.sum()
        if self.pos != len(self.toks):
            raise self.fail()
        if not 0 <= result < 10**15:
            raise _fail(self.decl.line, f"the size of a {self.decl.text} declaration is out of "
                        "range")
        return result

    def peek(self) -> str | None:
        return self.toks[self.pos].text if self.pos < len(self.toks) else None

    def sum(self) -> int:
        total = self.product()
        while self.peek() in ("+", "-"):
            sign = 1 if self.toks[self.pos].text == "+" else -1
            self.pos += 1
            total += sign * self.product()
        return total

    def product(self) -> int:
        total = self.atom()
        while self.peek() == "*":
            self.pos += 1
            total *= self.atom()
            if abs(total) >= 10**15:
                raise _fail(self.decl.line, f"the size of a {self.decl.text} declaration is "
                            "out of range")
        return total

    def atom(self) -> int:
        if self.pos >= len(self.toks):
            raise self.fail()
        tok = self.toks[self.pos]
        self.pos += 1
        if tok.text == "(":
            inner = self.sum()
            if self.peek() != ")":
                raise self.fail()
            self.pos += 1
            return inner
        if tok.kind == "ident":
            if tok.text not in self.constants:
                raise self.fail()
            return self.constants[tok.text]
        return _integer(tok, f"the size of a {self.decl.text} declaration")


def _declared_version(toks: list[Token]) -> int:
    """The major version of the first ``OPENQASM <n>;`` header (2 when there is none)."""
    for i, tok in enumerate(toks[:-2]):
        number, end = toks[i + 1], toks[i + 2]
        if tok.text == "OPENQASM" and number.kind == "number" and end.text == ";":
            major = number.text.split(".")[0]
            if major not in ("2", "3"):
                raise JobFailure(Reason.INVALID_CIRCUIT, f"OPENQASM {major[:12]} is not "
                                 "supported: use OpenQASM 2 or 3")
            return int(major)
    return 2


def scan_qasm(source: str, limits: ScanLimits) -> int:
    """The OpenQASM version the source declares, once the scan has refused includes,
    oversized registers and definitions, huge integers and deep nesting; no parser has run."""
    toks = list(tokens(source))
    version = _declared_version(toks)
    _Scanner(toks, version, limits).run()
    return version
