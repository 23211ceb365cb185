"""The Quantum Invocation Policy engine."""
