"""Fixtures of tests/chart: the chart installed on control planes of their own."""

from tests.chart.installed import install, namespaced_install

__all__ = ["install", "namespaced_install"]
