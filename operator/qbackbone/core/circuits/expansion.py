"""What a parsed circuit will cost once unrolled, measured without unrolling it.

Parsing keeps custom gates and loops folded: 20 nested gate definitions that each call
the previous one twice are 1 KB of text and one operation, but a million once the
transpiler expands them, and ``for i in [0:10^9]`` is one ``for_loop``. This walk sizes
the expansion from each definition once (memoised by gate name) and refuses what is too
large, too deep, unbounded, or not runnable, before any transpiler or simulator starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qiskit import QuantumCircuit
from qiskit.circuit import (
    AnnotatedOperation,
    ControlFlowOp,
    ForLoopOp,
    Instruction,
    ParameterExpression,
    WhileLoopOp,
)

from qbackbone.api.conditions import Reason
from qbackbone.core.errors import JobFailure

# Operations every backend understands without a definition.
_PRIMITIVES = frozenset({"measure", "reset", "barrier", "delay", "store"})


@dataclass(frozen=True)
class ExpansionLimits:
    """Bounds on the unrolled circuit; the policy's ``spec.limits`` supplies the values."""

    max_operations: int
    max_gate_nesting: int


class _Walker:
    def __init__(self, limits: ExpansionLimits) -> None:
        self.limits = limits
        self.gate_cost: dict[tuple[str, int], int] = {}

    def circuit_cost(self, circuit: QuantumCircuit, depth: int) -> int:
        total = 0
        for inst in circuit.data:
            total += self.operation_cost(inst.operation, depth)
            if total > self.limits.max_operations:
                raise self.too_many(total)
        return total

    def too_many(self, total: int) -> JobFailure:
        return JobFailure(
            Reason.INPUT_TOO_LARGE,
            f"the circuit unrolls to more than {self.limits.max_operations} operations "
            f"(at least {total}, counting gate definitions and loops in full); shorten it or "
            "raise the policy's spec.limits.maxOperations",
        )

    def operation_cost(self, op: Instruction, depth: int) -> int:
        _check_parameters(op)
        if isinstance(op, WhileLoopOp):
            raise JobFailure(
                Reason.UNSUPPORTED_OPERATION,
                "the circuit has a while loop, whose run time cannot be bounded before it "
                "runs; unroll it or use a for loop over a fixed range",
            )
        if op.name == "box":
            raise JobFailure(
                Reason.UNSUPPORTED_OPERATION,
                "the circuit uses an OpenQASM 3 box, which the backends do not run; remove the "
                "box and keep its contents",
            )
        if isinstance(op, ForLoopOp):
            indexset, _, body = op.params
            iterations = len(indexset)
            body_cost = self.circuit_cost(body, depth + 1)
            return _checked_product(iterations, max(body_cost, 1), self)
        if isinstance(op, ControlFlowOp):  # if/else, switch, box: the costliest branch
            return max((self.circuit_cost(b, depth + 1) for b in op.blocks if b is not None),
                       default=1)
        if isinstance(op, AnnotatedOperation):
            power = 1.0
            for modifier in op.modifiers:
                power *= abs(float(getattr(modifier, "power", 1.0)))
            repeats = max(1, math.ceil(power))
            return _checked_product(repeats, self.operation_cost(op.base_op, depth), self)
        if op.name in _PRIMITIVES or getattr(op, "_standard_gate", None) is not None:
            return 1
        return self.defined_cost(op, depth)

    def defined_cost(self, op: Instruction, depth: int) -> int:
        key = (op.name, op.num_qubits)
        if key in self.gate_cost:
            return self.gate_cost[key]
        if depth >= self.limits.max_gate_nesting:
            raise JobFailure(
                Reason.INPUT_TOO_LARGE,
                f"gate definitions nest deeper than {self.limits.max_gate_nesting} levels "
                f"(at {op.name!r}); flatten them or raise spec.limits.maxGateNesting",
            )
        definition = op.definition
        if definition is None:
            if op.name == "unitary" and op.num_qubits <= 2:
                return 1  # a small gate given by its matrix synthesises to a few gates
            raise JobFailure(
                Reason.UNKNOWN_GATE,
                f"gate {op.name!r} has no definition (an opaque gate): no QPU or simulator "
                "can run it; define it with a 'gate' block",
            )
        cost = max(self.circuit_cost(definition, depth + 1), 1)
        self.gate_cost[key] = cost
        return cost


def _checked_product(count: int, cost: int, walker: _Walker) -> int:
    total = count * cost
    if total > walker.limits.max_operations:
        raise walker.too_many(total)
    return total


def _check_parameters(op: Instruction) -> None:
    """Every numeric gate parameter must be a finite, bound number."""
    if isinstance(op, ControlFlowOp):
        return
    for value in op.params:
        if isinstance(value, ParameterExpression):
            if value.parameters:
                names = ", ".join(sorted(p.name for p in value.parameters))
                raise JobFailure(
                    Reason.INVALID_CIRCUIT,
                    f"gate {op.name!r} has unbound parameters ({names}); give every angle a "
                    "value (inputs are not supported)",
                )
            value = complex(value)
        if isinstance(value, int | float | complex) and not _finite(value):
            raise JobFailure(
                Reason.INVALID_CIRCUIT,
                f"gate {op.name!r} has a parameter that is not a finite number ({value}); "
                "angles must be finite",
            )


def _finite(value: complex) -> bool:
    try:
        return math.isfinite(abs(value))
    except OverflowError:  # an integer too large for a float
        return False


def expanded_size(circuit: QuantumCircuit, limits: ExpansionLimits) -> int:
    """Operations after unrolling every definition and loop; refuses what exceeds limits."""
    phase = circuit.global_phase
    if not isinstance(phase, ParameterExpression) and not math.isfinite(float(phase)):
        raise JobFailure(Reason.INVALID_CIRCUIT, "the circuit's global phase is not finite")
    return _Walker(limits).circuit_cost(circuit, 0)
