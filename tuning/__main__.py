"""``python -m tuning``. Thread settings first: they must precede the import of torch."""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

from absl import flags  # noqa: E402

import compat  # noqa: E402,F401
from tuning import cli  # noqa: E402

flags.adopt_module_key_flags(cli)  # --help lists the command's flags, not only this file's (none)
cli.main()
