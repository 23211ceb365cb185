"""Which placement engine runs: the compiled one (``_placement`` here, Rust, built by the
project's install from ``operator/native``) when it is there, else the pure-Python reference in
:mod:`.placement`. Both give the same plans (``tests/scheduling/test_native_placement.py``);
the compiled one is about 30-50x faster, which is what re-planning 1,000 jobs on 100 QPUs
within 2 s needs (``benchmarks/scheduler/latency.py``).

``QB_SCHEDULER_ENGINE`` chooses: ``auto`` (default: compiled when built), ``native`` (the
compiled one or an error) or ``python`` (the reference).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .placement import Compiled

try:  # built by the install; absent where no Rust toolchain was available
    from . import _placement  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on how the package was installed
    _placement = None

ENGINES = ("auto", "native", "python")


class Busy(Protocol):
    """Every QPU's busy intervals during a decode (copies share unchanged timelines)."""

    def copy(self) -> Busy: ...

    def insert(self, q: int, start: float, end: float) -> None: ...

    def same(self, other: Any) -> bool: ...

    def timelines(self) -> Sequence[tuple[Sequence[float], Sequence[float]]]: ...


def native_available() -> bool:
    """The compiled engine was built and imports."""
    return _placement is not None


def chosen_engine(engine: str | None = None) -> str:
    """``native`` or ``python``: ``engine`` (else ``QB_SCHEDULER_ENGINE``, else ``auto``)."""
    want = engine or os.environ.get("QB_SCHEDULER_ENGINE", "auto") or "auto"
    if want not in ENGINES:
        raise ValueError(f"scheduler engine {want!r}: expected one of {', '.join(ENGINES)}")
    if want == "native" and _placement is None:
        raise RuntimeError("the compiled scheduler engine (qbackbone.core.scheduling._placement) "
                           "is not built: reinstall with a Rust toolchain (cargo) on PATH")
    if want == "auto":
        return "native" if _placement is not None else "python"
    return want


def native_engine(c: Compiled, engine: str | None = None) -> Any:
    """The compiled twin of ``c`` (``None``: the Python engine runs)."""
    if chosen_engine(engine) == "python":
        return None
    assert _placement is not None
    jobs = [(jd.release, jd.deadline, list(jd.topo), [list(p) for p in jd.preds],
             [list(e) for e in jd.eligible], list(jd.remaining), list(jd.fixed_end),
             jd.splittable) for jd in c.jobs]
    base = [(list(s), list(e)) for s, e in c.base]
    return _placement.Engine(list(c.rate), list(c.setup), list(c.release), base,
                             c.min_fragment, jobs)
