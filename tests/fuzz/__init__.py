"""The fuzz tier (issue 14): generated hostile inputs, a fixed seed, a report at the end.

Run it alone with ``.venv/bin/python -m pytest tests/fuzz``; ``hack/test.sh`` runs it with
everything else. Each input is a manifest file: most go through ``load_manifests`` and
``run_job`` in a forked child of a warm worker process (worker.py), some through the real
``qbackbone run``; parse_document also runs on Python trees in the pytest process. Every
input must end Succeeded or Failed with a CamelCase reason other than InternalError, leak
nothing from planted files, serialise as strict JSON, and stay within 20 s and its memory
bound. The counts, the slowest and largest inputs and any problem with its shortest input
are printed at the end and written to $QB_FUZZ_REPORT (default: pytest's base temp dir).
QB_FUZZ_SEED / QB_FUZZ_SCALE explore other inputs; QB_FUZZ_LOG=<file> logs every answer.
"""
