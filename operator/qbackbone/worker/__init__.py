"""The command fragment and classical pods run: ``qbackbone worker --input NAME``.

Contract: the input ConfigMap (built by ``qbackbone.k8s.builders``) names the job, its uid and
the result ConfigMap; the worker runs the circuits as one backend call (or the classical
fallback) and creates the result ConfigMap, owned by the job. A result that already exists
means the work was done: the worker exits 0 without running anything.
"""
