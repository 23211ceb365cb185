"""The project's image, built without Docker (``qbackbone dev image``), imported into a real
node's containerd and run by the kubelet as the chart runs it: the image's user (runAsNonRoot),
a read-only root file system with /tmp from an emptyDir, the chart's image reference.

Skips, with the reason, when this host cannot run a real node, or when the image is not built
and building it would take minutes (the base and dependency layers are not cached: run
``hack/build-image.sh`` once, or set ``QB_IMAGE_BUILD=1``). A rebuild of the project layer
alone (a changed tree) takes seconds and is done here. ``QB_REQUIRE_REAL_NODE=1`` turns the
skips into failures and allows any build.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from qbackbone.dev import ClusterInfo
from qbackbone.dev.image import import_into
from qbackbone.dev.image_build import build, plan
from qbackbone.dev.image_rootfs import ImageBuildError
from qbackbone.dev.realnode import RealNode, start_real_node
from qbackbone.dev.waiting import wait_for
from tests.operator.realnode_kit import cannot, real_control_plane

REPO = Path(__file__).resolve().parents[2]
NODE = "qb-image-node"
CHART = REPO / "charts" / "qbackbone"

pytestmark = pytest.mark.slow


def chart_image() -> str:
    """The image reference the chart renders by default (repository:appVersion)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())["image"]
    tag = values["tag"] or yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    return f"{values['repository']}:{tag}"


@pytest.fixture(scope="module")
def image() -> dict[str, Any]:
    """The image's record; built here only when that is quick (or allowed)."""
    anything = "1" in (os.environ.get("QB_IMAGE_BUILD"), os.environ.get("QB_REQUIRE_REAL_NODE"))
    try:
        record = build(plan(REPO), allow=lambda kind: anything or kind in ("app", "cached"))
    except ImageBuildError as exc:
        cannot(f"the image is not built ({exc}): run hack/build-image.sh (about 3 minutes "
                "cold) or set QB_IMAGE_BUILD=1")
    print(f"\nimage {record['build']['kind']} in {record['build']['seconds']} s: "
          f"{record['archive_bytes'] / 2**20:.0f} MiB")
    return record


@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """A control plane of its own that the real node joins."""
    with real_control_plane(tmp_path_factory.mktemp("image-node-cluster")) as info:
        yield info


@pytest.fixture(scope="module")
def node(real_cluster: ClusterInfo, image: dict[str, Any]) -> Iterator[RealNode]:
    """The real node with the image imported."""
    real = start_real_node(real_cluster, name=NODE, tied=True, timeout=90)
    try:
        seconds = import_into(real.layout.root, Path(image["archive"]))
        print(f"\nimported {image['names']} in {seconds} s")
        yield real
    finally:
        real.stop()


@pytest.fixture(scope="module")
def core(real_cluster: ClusterInfo) -> Iterator[client.CoreV1Api]:
    api = config.new_client_from_config(config_file=real_cluster.kubeconfig)
    yield client.CoreV1Api(api)
    api.close()


def _pod(name: str, command: list[str] | None, args: list[str] | None) -> client.V1Pod:
    """A pod as the chart's operator Deployment makes them (security contexts, /tmp)."""
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            restart_policy="Never", termination_grace_period_seconds=1,
            node_selector={"kubernetes.io/hostname": NODE},
            security_context=client.V1PodSecurityContext(
                run_as_non_root=True, seccomp_profile=client.V1SeccompProfile(
                    type="RuntimeDefault")),
            containers=[client.V1Container(
                name="main", image=chart_image(), image_pull_policy="Never", command=command,
                args=args, security_context=client.V1SecurityContext(
                    allow_privilege_escalation=False, read_only_root_filesystem=True,
                    capabilities=client.V1Capabilities(drop=["ALL"])),
                volume_mounts=[client.V1VolumeMount(name="tmp", mount_path="/tmp")])],
            volumes=[client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource())]))


def _run(core: client.CoreV1Api, name: str, command: list[str] | None,
         args: list[str] | None) -> tuple[Any, str]:
    t0 = time.monotonic()
    core.create_namespaced_pod("default", _pod(name, command, args))

    def ended() -> Any:
        pod = core.read_namespaced_pod(name, "default")
        return pod if pod.status and pod.status.phase in ("Succeeded", "Failed") else None

    pod = wait_for(ended, 180, interval=0.1, what=f"pod {name} to end")
    logs = core.read_namespaced_pod_log(name, "default")
    print(f"\npod {name}: {pod.status.phase} {time.monotonic() - t0:.1f}s after create")
    return pod, logs


def test_the_image_defaults_run_as_its_non_root_user(node: RealNode, core: client.CoreV1Api,
                                                      image: dict[str, Any]) -> None:
    pod, logs = _run(core, "defaults", None, None)  # ENTRYPOINT qbackbone, CMD --help
    assert pod.status.phase == "Succeeded", (pod.status, logs)
    assert logs.startswith("usage: qbackbone")
    pod, logs = _run(core, "version", None, ["--version"])
    assert pod.status.phase == "Succeeded", (pod.status, logs)
    assert logs.strip() == image["version"]


def test_fleet_runs_as_the_chart_runs_the_image(node: RealNode,
                                                core: client.CoreV1Api) -> None:
    pod, logs = _run(core, "fleet", ["qbackbone"], ["fleet"])  # imports qiskit, aer, runtime
    assert pod.status.phase == "Succeeded", (pod.status, logs)
    for qpu in ("nairobi", "guadalupe", "torino", "aer-ideal"):
        assert qpu in logs
    container_id = pod.status.container_statuses[0].container_id.removeprefix("containerd://")
    assert container_id in node.ctr("containers", "ls", "-q")
    assert "docker.io/library/" + chart_image() in node.ctr("images", "ls", "-q")
