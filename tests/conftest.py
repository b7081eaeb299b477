import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import compat  # noqa: E402,F401  (so `import algoperf` resolves in every test module)
