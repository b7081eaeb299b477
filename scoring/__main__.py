"""``python -m scoring``."""

from absl import flags  # noqa: E402

import compat  # noqa: F401  (targets of official workloads come from algoperf when it is installed)
from scoring import cli  # noqa: E402

flags.adopt_module_key_flags(cli)  # --help lists the command's flags, not only this file's (none)
cli.main()
