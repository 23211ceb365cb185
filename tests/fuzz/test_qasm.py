"""OpenQASM 2 and 3 circuits from the grammar-based generator, run through run_job."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.gen_manifests import circuit_spec, job_doc
from tests.fuzz.harness import Fuzzer, assert_clean, fuzz_settings

CIRCUITS = 300
RAW_CIRCUITS = 30

H2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
H3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\n'
# Hand-written sources for what a generator reaches rarely; each runs as a sampling job.
KNOWN = [
    H3 + "// note\rqubit[100000] big;\nh q[0];",
    H3 + "// note\rinclude \"{secret}\";\nh q[0];",
    H2 + "h q[18446744073709551617];",
    H2 + "rz(" + "-" * 20_000 + "1) q[0];",
    H3 + "rz(" + "-" * 8_000 + "1) q[0];",
    H3 + "rz(" + "+".join(["1"] * 1500) + ") q[0];",
    H3 + "pow(1e300) @ x q[0];",
    H3 + "pow(-1e300) @ x q[0];",
    H3 + "ctrl(1000000) @ x q[0], q[1];",
    H3 + "delay[1e308s] q[0];",
    H3 + "for uint i in [0:1000000000000] { h q[0]; }",
    H3 + "while (c[0]) { h q[0]; }",
    "OPENQASM 3.0;\nqubit[1000] q;\n" + "".join(f"cx q[{k}], q[{k + 1}];\n" for k in range(999)),
    "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[1000];\nh q;\nmeasure q[0] -> c[0];",
    H2 + "include \"{secret}\";",
    H2 + "include \"/etc/passwd\";",
    H3 + "include \"/etc/passwd\";",
    H2 + "opaque magic a;\nmagic q[0];",
    H3 + "input float theta;\nrz(theta) q[0];",
    # Nested gate definitions, each calling the previous one three times (3^12 operations).
    H3 + "".join(f"gate g{k} a {{ " + f"g{k - 1} a; " * 3 + "}\n" if k else "gate g0 a { h a; }\n"
                 for k in range(13)) + "g12 q[0];",
    H2 + "/* never closed\nh q[0];",
    H3 + "rz(1" + "0" * 400 + ") q[0];",
    H3 + "ctrl(2147483648) @ x q[0], q[0];",
    "\ufeffOPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[1];\nh q[0];",
]


def _known_docs(secret: str) -> list[dict[str, object]]:
    return [job_doc(f"known-{k}", {"circuit": {"qasm": text.replace("{secret}", secret),
                                               "sampling": True}, "shots": 100})
            for k, text in enumerate(KNOWN)]


def test_generated_circuits_end_in_a_clean_status(fuzzer: Fuzzer) -> None:
    secrets = fuzzer.planted.include_paths

    @fuzz_settings(CIRCUITS)
    @given(case=circuit_spec(secrets))
    def run(case: tuple[dict[str, object], str]) -> None:
        spec, _ = case
        fuzzer.run_docs("qasm", [job_doc("fuzz-qasm", spec)])

    run()
    assert_clean("qasm")


def test_known_hostile_circuits_end_in_a_clean_status(fuzzer: Fuzzer) -> None:
    for doc in _known_docs(fuzzer.planted.include_paths[0]):
        fuzzer.run_docs("qasm-known", [doc])
    assert_clean("qasm-known")


def test_circuits_as_raw_yaml_strings(fuzzer: Fuzzer) -> None:
    """The source pasted into a block scalar by hand, separators and all."""

    @fuzz_settings(RAW_CIRCUITS)
    @given(case=circuit_spec(fuzzer.planted.include_paths, hostile=0.6), indent=st.just(6))
    def run(case: tuple[dict[str, object], str], indent: int) -> None:
        _, qasm = case
        body = "\n".join(" " * indent + line for line in qasm.split("\n"))
        text = ("apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: {name: raw}\n"
                f"spec:\n  shots: 100\n  circuit:\n    sampling: true\n    qasm: |\n{body}\n")
        fuzzer.run_bytes("qasm-raw", text)

    run()
    assert_clean("qasm-raw")
