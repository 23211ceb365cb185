"""Command-line entry points of ``qbackbone``."""
