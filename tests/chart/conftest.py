"""Fixtures of tests/chart: the chart installed on a control plane of its own."""

from tests.chart.installed import install

__all__ = ["install"]
