from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import compat  # noqa: E402,F401  (so `import algoperf` resolves in every test module)
