"""The real node's supervisor (``python -m qbackbone.dev.realnode_supervisor``, started by
``realnode.start_real_node``): runs containerd, the kubelet and kube-proxy until SIGTERM, then
takes the node down in order and cleans up what they leave (``realnode_host.clean_up``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kubernetes import client, config

from qbackbone.dev import procs
from qbackbone.dev.realnode import RealNodeError, pause_archive, run_ctr
from qbackbone.dev.realnode_host import NodeLayout, NodeSettings, clean_up
from qbackbone.dev.realnode_proxy import proxy_args, remove_proxy_rules


class Supervisor:
    """Runs containerd and the kubelet until SIGTERM, then takes the node down in order."""

    def __init__(self, layout: NodeLayout) -> None:
        self.layout = layout
        self.settings = NodeSettings.load(layout)
        self.bin_dir = Path(self.settings.bin_dir)
        self.log_dir = Path(self.settings.log_dir)
        self.children: dict[str, tuple[subprocess.Popen[bytes], procs.ProcessRecord]] = {}
        self.stopping = False
        self.status: dict[str, object] = {"phase": "starting", "pid": os.getpid()}

    def _write_status(self, **fields: object) -> None:
        self.status.update(fields)
        self.layout.status.write_text(json.dumps(self.status, indent=2) + "\n")

    def _start(self, name: str, args: list[str]) -> None:
        env = dict(os.environ, PATH=f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
        proc, record = procs.start(name, [str(self.bin_dir / name), *args], self.log_dir,
                                   env=env, die_signal=signal.SIGTERM)
        self.children[name] = (proc, record)

    def _check_children(self) -> None:
        for name, (proc, _) in self.children.items():
            if proc.poll() is not None:
                raise RealNodeError(f"{name} exited with {proc.returncode}")

    def _wait_for_containerd(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.stopping:
            self._check_children()
            with contextlib.suppress(RealNodeError, subprocess.TimeoutExpired):
                run_ctr(self.layout, self.bin_dir, "version", timeout=5)
                return
            if time.monotonic() > deadline:
                raise RealNodeError(f"containerd not ready after {timeout:.0f}s")
            time.sleep(0.05)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(self, "stopping", True))
        layout = self.layout
        try:
            t0 = time.time()
            self._start("containerd", [f"--config={layout.containerd_config}"])
            self._wait_for_containerd()
            if not self.stopping:
                run_ctr(layout, self.bin_dir, "images", "import", "--local",
                     str(pause_archive(self.bin_dir)))
            self._write_status(containerd_ready=round(time.time() - t0, 2))
            args = [f"--config={layout.kubelet_config}",
                    f"--kubeconfig={layout.kubelet_kubeconfig}",
                    f"--hostname-override={self.settings.name}",
                    f"--node-ip={self.settings.ip}", f"--root-dir={layout.kubelet_root}",
                    f"--cert-dir={layout.pki}", "--v=1"]
            if self.settings.labels:
                labels = ",".join(f"{k}={v}" for k, v in self.settings.labels.items())
                args.append(f"--node-labels={labels}")
            if not self.stopping:
                self._start("kubelet", args)
                self._write_status(kubelet_started=time.time())
            if not self.stopping and self.settings.proxy_healthz_port:
                self._start("kube-proxy", proxy_args(layout.root))
            self._write_status(phase="running")
            while not self.stopping:
                self._check_children()
                time.sleep(0.2)
            return 0
        except Exception as exc:
            print(f"real node failed: {exc}", file=sys.stderr, flush=True)
            self._write_status(phase="failed", error=str(exc))
            return 1
        finally:
            self._teardown()

    def _teardown(self) -> None:
        """Kubelet first (it would restart pods), then every sandbox through CRI, then
        containerd; then what they leave; then the Node."""
        t0 = time.monotonic()
        for name in ("kube-proxy", "kubelet"):
            if name in self.children:
                proc, record = self.children[name]
                procs.stop(record, proc, 5)
        if "kube-proxy" in self.children:
            print(remove_proxy_rules(self.bin_dir), flush=True)
        if "containerd" in self.children:
            proc, record = self.children["containerd"]
            if proc.poll() is None:
                crictl = [str(self.bin_dir / "crictl"), f"--config={self.layout.crictl_config}",
                          "rmp", "--all", "--force"]
                try:
                    done = subprocess.run(crictl, capture_output=True, text=True, timeout=30,
                                          check=False)
                    print(f"crictl rmp: {done.returncode} {done.stdout}{done.stderr}".strip(),
                          flush=True)
                except subprocess.TimeoutExpired:
                    print("crictl rmp timed out: cleaning up by force", flush=True)
            procs.stop(record, proc, 5)
        problems = clean_up(self.layout)
        for problem in problems:
            print(f"clean-up: {problem}", flush=True)
        self._delete_node()
        print(f"real node stopped in {time.monotonic() - t0:.1f}s", flush=True)
        self._write_status(phase="stopped")

    def _delete_node(self) -> None:
        try:
            api = config.new_client_from_config(config_file=self.settings.admin_kubeconfig)
        except Exception as exc:  # the cluster may already be gone
            print(f"not deleting Node {self.settings.name}: {exc}", flush=True)
            return
        try:
            client.CoreV1Api(api).delete_node(self.settings.name, _request_timeout=3)
        except Exception as exc:
            print(f"not deleting Node {self.settings.name}: {exc}", flush=True)
        finally:
            api.close()


def main(argv: Sequence[str] | None = None) -> int:
    """The supervisor's entry point (started by ``start_real_node``)."""
    parser = argparse.ArgumentParser(prog="python -m qbackbone.dev.realnode",
                                     description=__doc__)
    parser.add_argument("--node-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    return Supervisor(NodeLayout(args.node_dir)).run()


if __name__ == "__main__":
    sys.exit(main())
