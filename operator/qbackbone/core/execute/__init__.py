"""Execution: shot distribution, running fragments, merging counts."""
