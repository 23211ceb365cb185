"""CEL QPU selectors: the expression a DRA ResourceClaim carries, evaluated by the QIP.

A job (``spec.execution.qpuSelector.cel``) or a policy (``spec.hardware.qpuSelector.cel``)
may restrict its QPUs with a CEL expression over ``device``, exactly as a claim's
``selectors[].cel.expression`` reads the devices ``qbackbone dra-driver`` publishes
(docs/dra.md): ``device.attributes["qpu.qbackbone.io"].qubits >= 7 &&
device.attributes["qpu.qbackbone.io"].site == "fra"``. The attributes come from the same
function the publisher uses (``dra/attributes.py``), so the QIP and kube-scheduler see the same
device, and a claim that pins the chosen QPU is always satisfiable.

Hostile expressions are refused before they are parsed: at most 10,240 characters (the limit
Kubernetes puts on a DRA selector), at most 32 levels of brackets (the parser recurses), and
no comprehension macros (``map``, ``filter``, ``all``, ``exists``, ``exists_one``): device
attributes are scalars, so a selector never needs them, and nested comprehensions over list
literals are the one way a short CEL expression runs for a very long time. What remains is
evaluated in time linear in its length. Like kube-scheduler, a runtime error (an attribute no
device has, a type mismatch) or a non-boolean result is an error of the selector, not a
non-match: the job fails ``InvalidQPUSelector`` saying which QPU and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes

from qbackbone.api.conditions import Reason
from qbackbone.api.qpunode import QPUNodeStatus
from qbackbone.core.errors import JobFailure
from qbackbone.core.qpus.fidelity import derive_max_depth
from qbackbone.core.qpus.fleet import QPU
from qbackbone.dra.attributes import DRIVER, Unpublishable, device_of

MAX_EXPRESSION = 10_240  # characters, as Kubernetes' DRA CEL selector
MAX_NESTING = 32
_MACRO = re.compile(r"\.\s*(map|filter|all|exists|exists_one)\s*\(")
_ENVIRONMENT = celpy.Environment()


@dataclass(frozen=True)
class QPUDeviceSelector:
    """A compiled CEL selector; ``source`` names where it came from (job or policy)."""

    expression: str
    source: str
    program: Any  # celpy Runner

    def matches(self, qpu: QPU) -> bool:
        """Whether the QPU's device satisfies the expression (False: it is not a device, e.g.
        a name the ``qpu`` attribute cannot hold); JobFailure on a runtime error."""
        attributes = device_attributes(qpu)
        if attributes is None:
            return False
        device = celpy.json_to_cel({"driver": DRIVER, "attributes": {DRIVER: attributes},
                                    "capacity": {DRIVER: {}}})
        try:
            result = self.program.evaluate({"device": device})
        except Exception as err:  # CELEvalError and whatever a CEL function raises
            raise _invalid(self.source, f"fails on QPU {qpu.name}: {_error_text(err)}") from None
        if isinstance(result, Exception):  # celpy may return errors as values
            raise _invalid(self.source, f"fails on QPU {qpu.name}: {_error_text(result)}")
        if not isinstance(result, celtypes.BoolType | bool):
            raise _invalid(self.source, f"gives {type(result).__name__} on QPU {qpu.name}, "
                           "not a boolean")
        return bool(result)


def compile_selector(expression: str, source: str) -> QPUDeviceSelector:
    """Check the limits, then parse; JobFailure(InvalidQPUSelector) when it cannot be one."""
    if not isinstance(expression, str) or not expression.strip():
        raise _invalid(source, "is empty")
    if len(expression) > MAX_EXPRESSION:
        raise _invalid(source, f"has {len(expression)} characters; at most {MAX_EXPRESSION}")
    depth = deepest = 0
    for char in expression:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    if deepest > MAX_NESTING:
        raise _invalid(source, f"nests {deepest} levels of brackets; at most {MAX_NESTING}")
    macro = _MACRO.search(expression)
    if macro:
        raise _invalid(source, f"uses the comprehension macro {macro.group(1)}(); device "
                       "attributes are scalars and need none")
    try:
        program = _ENVIRONMENT.program(_ENVIRONMENT.compile(expression))
    except Exception as err:  # CELParseError, lark errors, RecursionError
        raise _invalid(source, f"does not parse: {_error_text(err)}") from None
    return QPUDeviceSelector(expression, source, program)


def device_attributes(qpu: QPU) -> dict[str, bool | int | str] | None:
    """The attributes ``qbackbone dra-driver`` publishes for this QPU (``name -> value``), from
    the QPUNode spec it was built from and the status the operator writes for it; None when
    the QPU has no spec or cannot be a device."""
    if qpu.spec is None:
        return None
    d = qpu.descriptor
    status = QPUNodeStatus(
        calibration=qpu.calibration_snapshot(), device_qubits=d.device_qubits,
        derived_max_depth=derive_max_depth(d.calibration) if d.calibration else None)
    obj = {"metadata": {"name": d.name},
           "spec": qpu.spec.model_dump(by_alias=True, mode="json", exclude_none=True),
           "status": {**status.model_dump(by_alias=True, mode="json", exclude_none=True),
                      "conditions": [{"type": "Ready", "status": "True"}]}}
    try:
        device = device_of(obj)
    except Unpublishable:
        return None
    return {name: next(iter(typed.values()))
            for name, typed in device.entry["attributes"].items()}


def _error_text(err: BaseException) -> str:
    text = str(err.args[0]) if isinstance(err, celpy.CELEvalError) and err.args else str(err)
    return " ".join(text.split())[:300] or type(err).__name__


def _invalid(source: str, what: str) -> JobFailure:
    return JobFailure(Reason.INVALID_QPU_SELECTOR, f"{source} {what}")
