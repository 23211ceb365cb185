"""Circuits: parsing, preparation for a measurement kind, features, observables."""
