"""Learning from job history: corrections of the QPU time model and success estimates,
and whether the quantum path paid per problem class (docs/learning-energy.md)."""

from qbackbone.core.learning.apply import LearnedView, apply_learning
from qbackbone.core.learning.model import LearnedModel, learn

__all__ = ["LearnedModel", "LearnedView", "apply_learning", "learn"]
