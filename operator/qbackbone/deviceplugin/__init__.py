"""The QPU device plugin (placeholder; filled in by the next commits)."""
