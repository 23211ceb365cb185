"""The QPU list, the config-file resource manager (reload, last good list, health from host
credentials) and the Allocate contract as pure functions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from qbackbone.deviceplugin import (
    QPU,
    ConfigError,
    ConfigResourceManager,
    MountSpec,
    SecretRef,
    container_allocation,
    load_config,
    parse_config,
)

TORINO = {"name": "torino", "provider": "ibm-runtime", "backend": "ibm_torino",
          "credentialsSecretRef": {"name": "ibm-token"}}


def write(path: Path, text: str) -> None:
    """Replace ``path`` as a ConfigMap volume does (a new file, so a new inode)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_yaml_list_and_json_mapping_give_the_same_qpus(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "- {name: qpu-a, provider: aer, backend: aer_simulator}\n"
        "- name: torino\n  provider: ibm-runtime\n  backend: ibm_torino\n"
        "  credentialsSecretRef: {name: ibm-token}\n")
    (tmp_path / "b.json").write_text(json.dumps({"qpus": [
        TORINO, {"name": "qpu-a", "provider": "aer", "backend": "aer_simulator"}]}))
    expected = (QPU("qpu-a", "aer", "aer_simulator"),
                QPU("torino", "ibm-runtime", "ibm_torino", SecretRef("ibm-token", "token")))
    assert load_config(tmp_path / "a.yaml") == expected
    assert load_config(tmp_path / "b.json") == expected
    assert expected[1].resource_name == "qpu.qbackbone.io/torino"
    assert expected[1].device_id == "torino"
    assert parse_config(None) == () and parse_config({"qpus": None}) == ()


@pytest.mark.parametrize(("data", "message"), [
    ([{"name": "Bad_Name", "provider": "aer", "backend": "x"}], "is not a QPU name"),
    ([{"name": "q" * 64, "provider": "aer", "backend": "x"}], "is not a QPU name"),
    ([{"provider": "aer", "backend": "x"}], "name must be a non-empty string"),
    ([{"name": "a", "provider": "aer"}], "(a): backend must be a non-empty string"),
    ([{"name": "a", "provider": "aer", "backend": "x", "token": "s3cret"}],
     "unknown fields ['token']"),
    ([{**TORINO, "credentialsSecretRef": None}], "provider ibm-runtime needs credentialsSecret"),
    ([{**TORINO, "credentialsSecretRef": {"name": "t", "key": ".."}}], "is not a Secret key"),
    ([{**TORINO, "credentialsSecretRef": {"name": "../etc"}}], "is not a Secret name"),
    ([{"name": "a", "provider": "aer", "backend": "x", "healthy": "yes"}], "true or false"),
    ([TORINO, TORINO], "QPU 'torino' is listed twice"),
    ({"qpu": []}, "unknown top-level fields ['qpu']"),
    ("qpu-a", "expected a list of QPUs"),
])
def test_bad_lists_are_rejected_precisely(data: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^cfg") as err:
        parse_config(data, "cfg")
    assert message in str(err.value)


def test_unreadable_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("qpus: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML or JSON"):
        load_config(tmp_path / "bad.yaml")


def test_config_manager_reloads_on_change_and_keeps_the_last_good_list(tmp_path: Path) -> None:
    path = tmp_path / "qpus.yaml"
    write(path, "- {name: qpu-a, provider: aer, backend: aer_simulator}\n")
    manager = ConfigResourceManager(path)
    assert list(manager.states()) == ["qpu-a"]
    write(path, "- {name: qpu-b, provider: fake, backend: fake_torino}\n")
    manager.refresh()
    assert list(manager.states()) == ["qpu-b"]
    write(path, "- {name: qpu-c}\n")  # broken: the last good list stays advertised
    manager.refresh()
    assert list(manager.states()) == ["qpu-b"]
    assert manager.last_error is not None and "backend" not in manager.last_error
    assert "provider must be" in manager.last_error
    write(path, "- {name: qpu-b, provider: fake, backend: fake_torino, healthy: false}\n")
    manager.refresh()
    assert manager.last_error is None
    assert not manager.states()["qpu-b"].healthy
    # A change the file's stat does not show (same inode, size and mtime) is only seen when
    # the reload is forced, as SIGHUP does.
    st = path.stat()
    path.write_text(path.read_text().replace("false", "true "))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    manager.refresh()
    assert not manager.states()["qpu-b"].healthy
    manager.refresh(force=True)
    assert manager.states()["qpu-b"].healthy


def test_first_read_must_succeed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        ConfigResourceManager(tmp_path / "missing.yaml")


def test_host_credentials_drive_health(tmp_path: Path) -> None:
    path = tmp_path / "qpus.json"
    write(path, json.dumps([TORINO]))
    host = tmp_path / "creds"
    manager = ConfigResourceManager(path, credentials_host_dir=host)
    state = manager.states()["torino"]
    assert not state.healthy and "creds/ibm-token/token is missing" in state.reason
    (host / "ibm-token").mkdir(parents=True)
    (host / "ibm-token" / "token").write_text("")
    manager.refresh()
    assert "is empty" in manager.states()["torino"].reason
    (host / "ibm-token" / "token").write_text("t0ken")
    manager.refresh()
    assert manager.states()["torino"].healthy


def test_allocation_with_host_credentials_mounts_the_secret_dir_read_only() -> None:
    qpu = QPU("torino", "ibm-runtime", "ibm_torino", SecretRef("ibm-token", "apikey"))
    allocation = container_allocation(qpu, Path("/etc/qbackbone/credentials"))
    assert allocation.envs["QB_IBM_TOKEN_FILE"] == "/var/run/secrets/qbackbone/ibm-token/apikey"
    assert allocation.mounts == [MountSpec("/var/run/secrets/qbackbone/ibm-token",
                                           "/etc/qbackbone/credentials/ibm-token", True)]
    # A non-IBM provider with a Secret gets only the generic variable.
    other = container_allocation(QPU("q", "acme", "b1", SecretRef("acme")))
    assert other.envs["QBACKBONE_QPU_CREDENTIALS_FILE"] == "/var/run/secrets/qbackbone/acme/token"
    assert "QB_IBM_TOKEN_FILE" not in other.envs
    assert not any("t0ken" in v for v in allocation.envs.values())
