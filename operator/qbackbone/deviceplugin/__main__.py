"""``python -m qbackbone.deviceplugin --config FILE --plugin-dir DIR``."""

from qbackbone.deviceplugin.cli import main

raise SystemExit(main())
