"""The detect and predict examples through `qbackbone run` (the issue's check, in small)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "detect-predict"


@pytest.mark.slow
def test_examples_succeed_and_meet_the_targets() -> None:
    files = ["abilene-topology.yaml", "detect-abilene.yaml", "detect-csv.yaml",
             "forecast-geant.yaml"]
    out = subprocess.run([sys.executable, "-m", "qbackbone.cli.main", "run", "-o", "json",
                          *(str(EXAMPLES / f) for f in files)],
                         capture_output=True, text=True, timeout=240, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    decoder, text, jobs = json.JSONDecoder(), out.stdout.strip(), {}
    while text:
        doc, end = decoder.raw_decode(text)
        for item in doc.get("items", [doc]):  # several jobs print as a List
            if item.get("kind") == "QuantumJob":
                jobs[item["metadata"]["name"]] = item["status"]
        text = text[end:].strip()
    assert set(jobs) == {"detect-abilene", "detect-csv", "forecast-geant"}
    for name in ("detect-abilene", "detect-csv"):
        status = jobs[name]
        assert status["phase"] == "Succeeded"
        report = status["result"]["solution"]["detection"]
        best = max(b["f1"] for b in report["baselines"])
        assert report["scores"]["f1"] >= best - 0.05, (name, report["scores"], best)
    forecast = jobs["forecast-geant"]["result"]["solution"]["forecast"]
    assert forecast["season"] == 168
    assert next(s for s in forecast["holdout"] if s["method"] == forecast["method"])["mase"] < 1
