"""`qbackbone --version` loads no Qiskit (the image's build checks the entry point in a chroot
without /proc, where importing qiskit-aer fails), and the history options' defaults, kept in
the command line module for that reason, agree with the store's."""

from __future__ import annotations

import subprocess
import sys

from qbackbone.cli import history as cli_history
from qbackbone.core.history import store


def test_version_imports_no_qiskit() -> None:
    code = ("import sys; sys.argv = ['qbackbone', '--version']\n"
            "from qbackbone.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('qiskit', 'qiskit_aer', 'qiskit_ibm_runtime'))\n"
            "print('LOADED', loaded)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert "LOADED []" in done.stdout, (done.stdout[-2000:], done.stderr[-2000:])


def test_history_defaults_agree_with_the_store() -> None:
    assert cli_history.DEFAULT_MAX_AGE_SECONDS == store.DEFAULT_MAX_AGE_SECONDS
    assert cli_history.DEFAULT_MAX_JOBS == store.DEFAULT_MAX_JOBS
