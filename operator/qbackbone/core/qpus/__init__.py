"""QPUs: physics-informed descriptors, fidelity estimates, the fleet and its backends."""
