"""``python -m tuning``. Thread settings first: they must precede the import of torch."""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import compat  # noqa: E402,F401
from tuning.cli import main  # noqa: E402

main()
