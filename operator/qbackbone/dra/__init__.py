"""QPUs as Dynamic Resource Allocation devices (driver ``qpu.qbackbone.io``, docs/dra.md):
``attributes`` (QPUNode -> device), ``slices`` (devices -> ResourceSlices per pool),
``publisher`` (the loop against the API server), ``cli`` (``qbackbone dra-driver``); the kubelet
plugin (``qbackbone dra-driver kubelet-plugin``): ``prepare``, ``cdi``, ``checkpoint``,
``claims``, ``fake``, ``health``, ``kubeletplugin``, ``kubeapi``, ``plugin_cli``,
``kubeletapi`` (the kubelet's protos)."""
