"""Energy per decision: power models of QPUs and classical paths, and job estimates."""

from qbackbone.core.energy.model import (
    CLASSICAL_WATTS_PER_CORE,
    TECHNOLOGY_DEFAULTS,
    PowerModel,
    classical_joules,
    power_model,
)

__all__ = ["CLASSICAL_WATTS_PER_CORE", "TECHNOLOGY_DEFAULTS", "PowerModel", "classical_joules",
           "power_model"]
