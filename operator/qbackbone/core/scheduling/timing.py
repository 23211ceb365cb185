"""One notion of "on time", "no overlap" and "not before", shared by the schedulers and the
validator, so that they agree on what is feasible.

Times are seconds relative to the plan (the operator plans from ``now`` = 0; the generator's
instances span at most hours). The tolerance is ABSOLUTE, :data:`TIME_EPS` = 1 ns:

* far below anything a schedule can gain from it: a shot takes 1e-4..1e-3 s on the devices
  modelled (``generator.DEVICES``), a setup about 1 s, and the exact model's grid is 0.1 us,
  so a fragment that ends 1 ns late or overlaps by 1 ns has no shot it could have run there;
* far above float noise: a time t carries a rounding error of a few ulps, about 2e-16 * t,
  which stays below 1 ns for t up to about 1e6 s (11 days), the horizon of any plan here.

A relative tolerance (the validator's former 1e-6 * |t|) grows with the clock: at t = 1000 s
it accepted a fragment ending 0.5 ms after its deadline, or two fragments overlapping by 0.5 ms
on one QPU, which is a couple of shots.
"""

from __future__ import annotations

#: Absolute time tolerance in seconds (see the module docstring).
TIME_EPS = 1e-9


def on_time(finish: float, deadline: float) -> bool:
    """``finish`` is by ``deadline``."""
    return finish <= deadline + TIME_EPS


def no_overlap(a_end: float, b_start: float) -> bool:
    """Something that starts at ``b_start`` comes after something that ends at ``a_end`` (on
    one QPU, or a subcircuit after its LOCC predecessor)."""
    return b_start >= a_end - TIME_EPS


def not_before(start: float, earliest: float) -> bool:
    """``start`` respects the release time ``earliest`` (arrival, now, QPU busy-until)."""
    return start >= earliest - TIME_EPS


def same_time(a: float, b: float) -> bool:
    """Two computations of one instant agree (e.g. a fragment's end and start + duration)."""
    return abs(a - b) <= TIME_EPS
