"""The windows a detect result lists: flagged ones and labelled ones that were missed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from qbackbone.api.telemetry import FlaggedWindow
from qbackbone.core.detect.models import Scored

if TYPE_CHECKING:
    from qbackbone.core.pipeline.detect import DetectState

MAX_LISTED = 100


def flagged_windows(state: DetectState, scored: Scored
                    ) -> tuple[list[FlaggedWindow], list[FlaggedWindow]]:
    """Flagged test windows (highest score first) and missed labelled ones, with the series
    deviating most and the injected kinds overlapping each."""
    windows = state.windows
    labels = windows.labels
    flagged: list[FlaggedWindow] = []
    missed: list[FlaggedWindow] = []
    for k in np.argsort(-scored.scores):
        index = int(state.test[k])
        start = int(windows.starts[index])
        end = start + windows.window
        labelled = None if labels is None else bool(labels[index])
        flag = bool(scored.flags[k])
        if not flag and not labelled:
            continue
        entry = FlaggedWindow(
            start=start, end=end, score=round(float(scored.scores[k]), 5), flagged=flag,
            labelled=labelled, links=[state.names[s] for s in windows.top_series[index]],
            kinds=sorted({a.kind for a in state.telemetry.anomalies
                          if a.start < end and start < a.end}))
        target = flagged if flag else missed
        if len(target) < MAX_LISTED:
            target.append(entry)
    return flagged, missed
