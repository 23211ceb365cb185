"""A device cut down to a QPU's region: a small backend whose simulator carries its noise.

A local run of a full 133-qubit fake device fails (Aer sizes memory by the device's width) or
takes minutes; the QPU's circuits never leave its region, so a BackendV2 over the restricted
target and ``AerSimulator.from_backend`` of it run the same noise on the qubits used, for
circuits compiled for the region (``QPU.transpile``).
"""

from __future__ import annotations

import functools
from typing import Any

from qiskit.providers import BackendV2, Options
from qiskit.transpiler import Target
from qiskit_aer import AerSimulator

from qbackbone.core.qpus.descriptor import restrict_target
from qbackbone.core.qpus.devices import fake_backend


class RegionBackend(BackendV2):
    """A backend that only describes a region (its target); it runs nothing itself."""

    def __init__(self, target: Target, name: str) -> None:
        super().__init__(name=name)
        self._region_target = target

    @property
    def target(self) -> Target:
        """The region's target, qubits renumbered 0..k-1."""
        return self._region_target

    @property
    def max_circuits(self) -> None:
        """No limit of its own."""
        return None

    @classmethod
    def _default_options(cls) -> Options:
        return Options()

    def run(self, run_input: Any, **options: Any) -> Any:
        """Not a runnable backend: simulate with :func:`region_simulator`."""
        raise NotImplementedError("a RegionBackend only describes a region")


@functools.cache
def region_simulator(device: str, region: tuple[int, ...], method: str = "automatic"
                     ) -> AerSimulator:
    """An Aer simulator with the calibrated noise of ``region`` of fake device ``device``."""
    target = restrict_target(fake_backend(device).target, list(region))
    simulator = AerSimulator.from_backend(RegionBackend(target, f"{device}{list(region)}"))
    simulator.set_options(method=method)
    return simulator
