"""Error mitigation: which level a job gets (plan), how it runs (estimator) and what
uncertainty its values honestly carry (uncertainty, residual)."""
