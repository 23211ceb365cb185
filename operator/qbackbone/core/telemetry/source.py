"""spec ... telemetry (generated, csv or configMapRef) to a Telemetry."""

from __future__ import annotations

from qbackbone.api.telemetry import TelemetrySource
from qbackbone.core.optimize.problem import ProblemError
from qbackbone.core.optimize.topology import ConfigMapReader, load_topology
from qbackbone.core.telemetry.csvinput import read_csv
from qbackbone.core.telemetry.generate import GeneratorOptions, generate
from qbackbone.core.telemetry.model import Telemetry


def load_telemetry(spec: TelemetrySource,
                   read_config_map: ConfigMapReader | None = None) -> Telemetry:
    """The series the spec names; ProblemError (or ProblemTooLarge) when it cannot be had."""
    if spec.generated is not None:
        g = spec.generated
        graph = load_topology(g.topology, read_config_map)
        return generate(graph, GeneratorOptions(
            seed=g.seed, days=g.days, step_minutes=g.step_minutes,
            peak_utilisation=g.peak_utilisation, noise=g.noise,
            growth_per_week=g.growth_per_week, anomalies=g.anomalies,
            anomaly_kinds=tuple(g.anomaly_kinds), max_endpoints=g.max_endpoints))
    text = spec.csv
    if spec.config_map_ref is not None:
        ref = spec.config_map_ref
        if read_config_map is None:
            raise ProblemError(f"telemetry.configMapRef {ref.name}/{ref.key} cannot be read "
                               "here: give the ConfigMap with the job's manifests")
        try:
            text = read_config_map(ref.name, ref.key)
        except KeyError as err:
            raise ProblemError(f"telemetry.configMapRef: {err.args[0]}") from None
    assert text is not None
    return read_csv(text, spec.step_minutes, spec.time_column, spec.label_column)
