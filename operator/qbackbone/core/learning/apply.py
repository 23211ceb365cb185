"""Learned values in a decision: corrected QPU assessments, and one rule per value used
(name, value, provenance as the threshold text, the QPU), so every decision says which
learned value it used and from how many jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from qbackbone.api.quantumjob import RuleOutcome
from qbackbone.core.learning.model import QUANTUM_PAYS, Learned, LearnedModel
from qbackbone.core.qip.inputs import QPUAssessment


@dataclass
class LearnedView:
    """The assessments as learning sees them, the rules that say so, and the problem class's
    verdict (None: no learned view)."""

    assessments: list[QPUAssessment]
    rules: list[RuleOutcome] = field(default_factory=list)
    quantum_pays: bool | None = None
    why: str = ""


def _provenance(value: Learned, model: LearnedModel, nominal: str) -> str:
    o = model.options
    text = (f"from {value.samples} job(s) ({value.method}, half-life {o.half_life:g}s, "
            f"bound x{o.max_correction:g}); {nominal}")
    if value.clamped:
        text += f"; raw {value.raw:.3g} clamped"
    return text


def apply_learning(assessments: Sequence[QPUAssessment], model: LearnedModel,
                   problem_class: str) -> LearnedView:
    """Scale each QPU's shot and setup time and raise its estimated success probability to
    the learned error-rate scale, where enough jobs taught them; record each as a rule."""
    view = LearnedView([])
    for a in assessments:
        d = a.descriptor
        learned = model.qpus.get(d.name)
        if learned is None:
            view.assessments.append(a)
            continue
        shot, setup, success = learned.shot_time, learned.setup_time, learned.success
        new_d = d
        if shot is not None:
            new_d = replace(new_d, shot_time=d.shot_time * shot.value)
            view.rules.append(RuleOutcome(
                name=shot.name, value=round(shot.value, 4), passed=True, qpu=d.name,
                threshold=_provenance(shot, model, f"shotTime {d.shot_time:.3g}s -> "
                                      f"{new_d.shot_time:.3g}s")))
        if setup is not None:
            new_d = replace(new_d, setup_time=d.setup_time * setup.value)
            view.rules.append(RuleOutcome(
                name=setup.name, value=round(setup.value, 4), passed=True, qpu=d.name,
                threshold=_provenance(setup, model, f"setupTime {d.setup_time:.3g}s -> "
                                      f"{new_d.setup_time:.3g}s (queue wait included)")))
        fidelity = a.estimated_fidelity
        if success is not None and fidelity is not None and not d.ideal and 0 < fidelity < 1:
            corrected = fidelity ** success.value
            view.rules.append(RuleOutcome(
                name=success.name, value=round(success.value, 4), passed=True, qpu=d.name,
                threshold=_provenance(success, model, f"estimated success {fidelity:.3g} -> "
                                      f"{corrected:.3g} (error rates x{success.value:.3g})")))
            fidelity = corrected
        view.assessments.append(replace(a, descriptor=new_d, estimated_fidelity=fidelity))
    outcomes = model.classes.get(problem_class)
    if outcomes is not None:
        pays = outcomes.pays(model.options)
        if pays is not None:
            view.quantum_pays = pays
            view.why = f"{problem_class}: {outcomes.describe()}"
            view.rules.append(RuleOutcome(
                name=QUANTUM_PAYS, value=outcomes.describe(), passed=pays,
                threshold=f"{problem_class}: quantum success rate within "
                f"{model.options.quantum_pays_margin:g} of classical, each from at least "
                f"{model.options.min_samples} jobs"))
    return view
