"""QPUs as Dynamic Resource Allocation devices (driver ``qpu.qbackbone.io``, docs/dra.md):
``attributes`` (QPUNode -> device), ``slices`` (devices -> ResourceSlices per pool),
``publisher`` (the loop against the API server), ``cli`` (``qbackbone dra-driver``)."""
