"""The QPU device plugin: advertises each QPU hosted on a node to the kubelet as the extended
resource ``qpu.qbackbone.io/<qpunode-name>`` (one device each) over the kubelet device-plugin
API v1beta1, and tells a fragment container which QPU it was given (docs/device-plugin.md).

Layers, bottom up: :mod:`.config` (the QPU list), :mod:`.resources` (what exists and whether
it is healthy, with a fake), :mod:`.allocate` (the Allocate contract), :mod:`.plugin` (one gRPC
server per QPU), :mod:`.manager` (serve, register, watch the kubelet), :mod:`.cli`.
"""

from qbackbone.deviceplugin.allocate import Allocation, MountSpec, container_allocation
from qbackbone.deviceplugin.config import (
    QPU,
    QPU_RESOURCE_PREFIX,
    ConfigError,
    SecretRef,
    for_node,
    load_config,
    parse_config,
)
from qbackbone.deviceplugin.manager import DEFAULT_PLUGIN_DIR, PluginManager
from qbackbone.deviceplugin.plugin import QPUPlugin
from qbackbone.deviceplugin.resources import (
    ConfigResourceManager,
    FakeResourceManager,
    QPUState,
    ResourceManager,
)

__all__ = [
    "DEFAULT_PLUGIN_DIR",
    "QPU",
    "QPU_RESOURCE_PREFIX",
    "Allocation",
    "ConfigError",
    "ConfigResourceManager",
    "FakeResourceManager",
    "MountSpec",
    "PluginManager",
    "QPUPlugin",
    "QPUState",
    "ResourceManager",
    "SecretRef",
    "container_allocation",
    "for_node",
    "load_config",
    "parse_config",
]
