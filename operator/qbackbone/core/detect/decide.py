"""The detect rules: does the quantum kernel pay for this job?

Feasibility: the mode and model allow it; the kernel needs at most maxKernelCircuits fidelity
circuits. Pays: the exact kernel is not concentrated (its off-diagonal spread is at least
minKernelSpread shot-noise sigmas, else the estimated kernel is mostly noise); with labels
(Auto only), its cross-validated F1 on the training windows is within validationMargin of
the better classical model's (RBF SVM or IsolationForest, which is also the one the classical
path uses). The QPU rules (qubits, fidelity, deadline) and a timed pilot batch of kernel
circuits follow in the pipeline (core/pipeline/detect.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qbackbone.api.quantumjob import RuleOutcome
from qbackbone.api.telemetry import AnomalyDetectionProblem
from qbackbone.core.detect.kernel import check_and_repair, exact_kernel, shot_sigma
from qbackbone.core.detect.models import (
    cross_validated_f1,
    cross_validated_forest_f1,
    rbf_gamma,
    rbf_gram,
)
from qbackbone.core.qip.engine import record_rule

MAX_EXACT_QUBITS = 12
FOREST_MARGIN = 0.05  # IsolationForest replaces the RBF SVM only with a clearly better CV F1


@dataclass
class KernelRules:
    """The outcome of the detect rules, and the exact training kernel they computed."""

    rules: list[RuleOutcome]
    quantum: bool
    exact_train: np.ndarray | None
    circuits: int
    classical: str = "rbfSvm"  # the classical model to use: the better one by validation
    validation: dict[str, float] = field(default_factory=dict)  # cross-validated F1s


def classical_validation(x_train: np.ndarray, y_train: np.ndarray | None,
                         seed: int) -> tuple[str, dict[str, float]]:
    """The classical model by cross-validated F1 (the RBF SVM unless IsolationForest beats it
    by FOREST_MARGIN: supervised usually wins, and the folds are small); without
    labels (or too few of a class), IsolationForest / the RBF SVM by default."""
    if y_train is None:
        return "isolationForest", {}
    gamma = rbf_gamma(x_train)
    rbf = cross_validated_f1(x_train, y_train, lambda a, b: rbf_gram(a, b, gamma))
    forest = cross_validated_forest_f1(x_train, y_train, seed)
    if rbf is None or forest is None:
        return "rbfSvm", {}
    scores = {"rbfSvm": round(rbf, 4), "isolationForest": round(forest, 4)}
    return ("isolationForest" if forest > rbf + FOREST_MARGIN else "rbfSvm"), scores


def kernel_rules(spec: AnomalyDetectionProblem, mode: str, x_train: np.ndarray,
                 y_train: np.ndarray | None, n_test: int, seed: int = 0) -> KernelRules:
    """Evaluate the rules in order; the exact kernel is kept for verification."""
    rules: list[RuleOutcome] = []
    classical, validation = classical_validation(x_train, y_train, seed)
    n = len(x_train)
    circuits = n * (n - 1) // 2 + n_test * n
    ok = record_rule(rules, "modeAllowsQuantum", mode, "not Classical", mode != "Classical")
    ok &= record_rule(rules, "modelAllowsQuantum", spec.model, "Auto or QuantumKernel",
                      spec.model in ("Auto", "QuantumKernel"))
    ok &= record_rule(rules, "kernelCircuitsAtMost", circuits, spec.max_kernel_circuits,
                      circuits <= spec.max_kernel_circuits)
    exact = None
    if ok and x_train.shape[1] <= MAX_EXACT_QUBITS:
        exact = exact_kernel(x_train, x_train)
        _, check = check_and_repair(exact)
        need = spec.min_kernel_spread * shot_sigma(spec.kernel_shots)
        ok &= record_rule(rules, "kernelSpreadAtLeast", round(check.off_std, 4),
                          round(need, 4), check.off_std >= need or spec.model != "Auto")
        if ok and spec.model == "Auto" and validation:
            kernel = exact
            index = {row.tobytes(): k for k, row in enumerate(x_train)}

            def quantum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
                rows = [index[r.tobytes()] for r in a]
                cols = [index[c.tobytes()] for c in b]
                return kernel[np.ix_(rows, cols)]

            assert y_train is not None
            qf1 = cross_validated_f1(x_train, y_train, quantum)
            if qf1 is not None:
                validation["quantumKernel"] = round(qf1, 4)
                best = validation[classical]
                ok &= record_rule(rules, "validationF1NotWorse", round(qf1, 4),
                                  round(best - spec.validation_margin, 4),
                                  qf1 >= best - spec.validation_margin)
    return KernelRules(rules, ok, exact, circuits, classical, validation)


def why_classical(rule: RuleOutcome) -> str:
    """A person's reading of a failed rule."""
    return {
        "modeAllowsQuantum": "execution.mode is Classical",
        "modelAllowsQuantum": f"model {rule.value} is classical",
        "kernelCircuitsAtMost": f"the kernel needs {rule.value} fidelity circuits, above "
                                f"maxKernelCircuits ({rule.threshold})",
        "kernelSpreadAtLeast": f"the kernel is concentrated: off-diagonal spread {rule.value} "
                               f"is below {rule.threshold} (shot noise would drown it)",
        "validationF1NotWorse": f"the quantum kernel's cross-validated F1 {rule.value} is below "
                                f"the best classical model's minus the margin "
                                f"({rule.threshold})",
        "kernelTimeFits": f"the kernel circuits would take about {rule.value}s on the chosen "
                          f"QPU, above the {rule.threshold}s budget",
    }.get(rule.name, f"rule {rule.name} failed")
