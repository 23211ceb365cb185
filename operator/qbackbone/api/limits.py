"""Per-job resource limits: the bounds every input is checked against before the work.

A policy may raise a default, never past the hard ceiling written as ``le=``: the ceilings
keep one job from taking the operator (or a laptop) down whatever a policy says.
"""

from __future__ import annotations

import math

from pydantic import Field

from qbackbone.api.common import ApiModel


class JobLimits(ApiModel):
    """How large, deep, long and memory-hungry one job may be."""

    max_circuit_bytes: int = Field(
        default=1_000_000, ge=1, le=10_000_000,
        description="Largest OpenQASM source, in UTF-8 bytes (OpenQASM 3 parses at about "
        "20 s per MB).",
    )
    max_declared_qubits: int = Field(
        default=1000, ge=1, le=10_000,
        description="Most qubits a circuit may declare, counted before parsing.",
    )
    max_classical_bits: int = Field(
        default=100_000, ge=1, le=1_000_000,
        description="Most classical bits a circuit may declare, counted before parsing.",
    )
    max_operations: int = Field(
        default=500_000, ge=1, le=10_000_000,
        description="Most operations once every gate definition and loop is unrolled.",
    )
    max_gate_nesting: int = Field(
        default=32, ge=1, le=64,
        description="Deepest chain of gate definitions calling gate definitions.",
    )
    max_bracket_nesting: int = Field(
        default=64, ge=1, le=256,
        description="Deepest nesting of brackets in the source (parsers recurse on it).",
    )
    max_observables: int = Field(
        default=100_000, ge=1, le=1_000_000, description="Most observables one job may list."
    )
    max_run_seconds: float = Field(
        default=300.0, gt=0, le=86_400,
        description="Wall-clock budget of one job in `qbackbone run`; past it the job ends "
        "Failed/TimeLimitExceeded and the other jobs go on.",
    )
    max_memory_mib: int = Field(
        default=1536, ge=256, le=65_536, alias="maxMemoryMiB",
        description="Memory one job may add in `qbackbone run`; past it the job ends "
        "Failed/MemoryLimitExceeded and the other jobs go on.",
    )

    def statevector_qubits(self, copies: int) -> int:
        """Widest statevector (16-byte amplitudes, ``copies`` of them live at once) that fits
        in ``maxMemoryMiB``."""
        return int(math.log2(self.max_memory_mib * 1024 * 1024 / (16 * copies)))
