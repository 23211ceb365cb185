"""spec.problem jobs (qubo, trafficEngineering, sliceAdmission) through run_job."""

from __future__ import annotations

from hypothesis import given

from tests.fuzz.gen_problems import problem_docs
from tests.fuzz.gen_values import Tree
from tests.fuzz.harness import Fuzzer, assert_clean, fuzz_settings

PROBLEMS = 200


def test_generated_problems_end_in_a_clean_status(fuzzer: Fuzzer) -> None:
    @fuzz_settings(PROBLEMS)
    @given(docs=problem_docs(fuzzer.planted.include_paths))
    def run(docs: list[Tree]) -> None:
        fuzzer.run_docs("problem", docs)

    run()
    assert_clean("problem")
