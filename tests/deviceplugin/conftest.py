"""Fixtures for the device-plugin tests: a short plugin directory (unix socket paths are
limited to about 107 bytes, pytest's tmp paths can be longer), a fake kubelet, a running
plugin manager over a fake resource manager."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qbackbone.deviceplugin import QPU, FakeResourceManager, PluginManager, SecretRef
from tests.deviceplugin.kubelet import FakeKubelet, wait_for

POLL = 0.05

QPUS = (
    QPU("qpu-a", "aer", "aer_simulator"),
    QPU("torino", "ibm-runtime", "ibm_torino", credentials=SecretRef("ibm-token")),
)


@pytest.fixture
def plugin_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="qbdp-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def kubelet(plugin_dir: Path) -> Iterator[FakeKubelet]:
    kubelet = FakeKubelet(plugin_dir).start()
    yield kubelet
    kubelet.stop()


@pytest.fixture
def resources() -> FakeResourceManager:
    return FakeResourceManager(QPUS)


@pytest.fixture
def threads_before() -> set[threading.Thread]:
    return set(threading.enumerate())


@pytest.fixture
def manager(threads_before: set[threading.Thread], kubelet: FakeKubelet,
            resources: FakeResourceManager, plugin_dir: Path) -> Iterator[PluginManager]:
    manager = PluginManager(resources, plugin_dir, poll_interval=POLL, register_timeout=2)
    manager.start()
    yield manager
    manager.stop()


def streaming(kubelet: FakeKubelet, resource: str, count: int = 1) -> None:
    """Wait until ``resource`` is registered ``count`` times and its latest stream has sent its
    initial list."""
    def ready() -> bool:
        endpoint = kubelet.endpoints.get(resource)
        return (kubelet.registered(resource) >= count and endpoint is not None
                and endpoint.devices is not None)
    wait_for(ready, what=f"{resource} registered ({count}) and streaming")
