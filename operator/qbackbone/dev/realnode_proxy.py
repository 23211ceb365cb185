"""kube-proxy for the real node: pods reach Services, above all the API server's 10.0.0.1.

The operator and its worker pods use the in-cluster configuration (``KUBERNETES_SERVICE_HOST``
= the ``kubernetes`` Service's IP); the API server advertises the node's IP, and kube-proxy's
iptables rules send the Service IP there. It authenticates as ``system:kube-proxy``, which the
API server's bootstrap RBAC already binds to ``system:node-proxier``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from qbackbone.dev.kubeconfig import write_kubeconfig
from qbackbone.dev.pki import CertificateAuthority

PROXY_USER = "system:kube-proxy"


def proxy_files(root: Path) -> tuple[Path, Path]:
    """(configuration, kubeconfig) of the node's kube-proxy under the node dir."""
    return root / "kube-proxy-config.yaml", root / "kube-proxy.kubeconfig"


def write_proxy_files(root: Path, ca: CertificateAuthority, server: str, node_name: str,
                      pod_subnet: str, healthz_port: int, metrics_port: int) -> None:
    """kube-proxy's client certificate, kubeconfig and KubeProxyConfiguration: iptables mode,
    loopback health and metrics ports of its own, and no conntrack sysctls (the VM may not
    allow them; kube-proxy leaves them alone when the values are 0)."""
    config_file, kubeconfig = proxy_files(root)
    cert = ca.issue("kube-proxy", PROXY_USER)
    write_kubeconfig(kubeconfig, server, ca.pair.cert_pem(), cert, PROXY_USER, "qbackbone-dev")
    config_file.write_text(yaml.safe_dump({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node_name,
        "clusterCIDR": pod_subnet,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
    }, sort_keys=False))


def proxy_args(root: Path) -> list[str]:
    """kube-proxy's command-line arguments."""
    config_file, _ = proxy_files(root)
    return [f"--config={config_file}", "--v=1"]


def remove_proxy_rules(bin_dir: Path) -> str:
    """``kube-proxy --cleanup``: delete the iptables chains it made; what it printed."""
    done = subprocess.run([str(bin_dir / "kube-proxy"), "--cleanup"], capture_output=True,
                          text=True, timeout=30, check=False)
    return f"kube-proxy --cleanup: {done.returncode} {done.stderr.strip()[-300:]}"
