"""``python -m qbackbone.deviceplugin`` as a process: registers with a kubelet-like peer, re-reads
its QPU list on SIGHUP, exits cleanly on SIGTERM; and the ``device-plugin`` subcommand."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qbackbone.deviceplugin import cli
from tests.deviceplugin.conftest import streaming
from tests.deviceplugin.kubelet import FakeKubelet

QPU_A = "- {name: qpu-a, provider: aer, backend: aer_simulator}\n"
QPU_B = "- {name: qpu-b, provider: fake, backend: fake_sherbrooke}\n"


@pytest.fixture
def config(plugin_dir: Path) -> Iterator[Path]:
    path = plugin_dir.parent / f"{plugin_dir.name}.yaml"
    path.write_text(QPU_A)
    yield path
    path.unlink(missing_ok=True)


def start(config: Path, plugin_dir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qbackbone.deviceplugin", "--config", str(config),
         "--plugin-dir", str(plugin_dir), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def process(config: Path, plugin_dir: Path) -> Iterator[subprocess.Popen[str]]:
    # A long poll interval: only SIGHUP can make the new list visible within the test.
    proc = start(config, plugin_dir, "--poll-interval", "60")
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate(timeout=10)


def test_process_registers_reloads_on_sighup_and_stops_on_sigterm(
        process: subprocess.Popen[str], kubelet: FakeKubelet, config: Path,
        plugin_dir: Path) -> None:
    streaming(kubelet, "qpu.qbackbone.io/qpu-a")
    config.write_text(QPU_A + QPU_B)
    process.send_signal(signal.SIGHUP)
    streaming(kubelet, "qpu.qbackbone.io/qpu-b")
    (response,) = kubelet.allocate("qpu.qbackbone.io/qpu-b", "qpu-b").container_responses
    assert response.envs["QBACKBONE_QPU_BACKEND"] == "fake/fake_sherbrooke"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "registered qpu.qbackbone.io/qpu-b" in err
    assert sorted(p.name for p in plugin_dir.iterdir()) == ["kubelet.sock"]


def test_bad_config_exits_2_with_the_reason(config: Path, plugin_dir: Path) -> None:
    config.write_text("- {name: torino, provider: ibm-runtime, backend: ibm_torino}\n")
    proc = start(config, plugin_dir)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "torino" in err and "needs credentialsSecretRef" in err


def test_device_plugin_subcommand() -> None:
    parser = argparse.ArgumentParser(prog="qbackbone")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["device-plugin", "--config", "q.yaml"])
    assert args.func is cli.run
    assert args.plugin_dir == Path("/var/lib/kubelet/device-plugins")
    assert args.kubelet_socket == "kubelet.sock" and args.credentials_host_dir is None
    with pytest.raises(SystemExit):
        parser.parse_args(["device-plugin", "--config", "q.yaml", "--poll-interval", "0"])
