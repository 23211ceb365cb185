"""Q-Backbone: QPUs as schedulable resources, and the reduce-solve-verify pipeline."""

__version__ = "0.1.0"
__all__ = ["__version__"]
