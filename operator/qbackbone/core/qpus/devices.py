"""The offline fake IBM devices of qiskit-ibm-runtime, by backend name."""

from __future__ import annotations

import functools
import warnings

from qiskit.providers import BackendV2

from qbackbone.api.conditions import Reason
from qbackbone.core.errors import JobFailure


def fake_device_names() -> dict[str, type]:
    """Offline fake IBM devices by backend name (e.g. fake_sherbrooke -> FakeSherbrooke)."""
    from qiskit_ibm_runtime import fake_provider
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    return {
        getattr(cls, "backend_name"): cls  # noqa: B009 (class attribute mypy cannot see)
        for cls in vars(fake_provider).values()
        if isinstance(cls, type) and issubclass(cls, FakeBackendV2)
        and isinstance(getattr(cls, "backend_name", None), str)
    }


@functools.cache
def fake_backend(name: str) -> BackendV2:
    """The offline fake IBM device of that name, built once per process."""
    known = fake_device_names()
    if name not in known:
        stem = name.removeprefix("fake_")[:4]
        close = sorted(n for n in known if stem and stem in n)
        hint = f" (did you mean {', '.join(close[:5])}?)" if close else ""
        raise JobFailure(
            Reason.BACKEND_UNAVAILABLE,
            f"no fake device named {name!r}{hint}; `qbackbone fleet --devices` lists them",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        backend: BackendV2 = known[name]()
    return backend
