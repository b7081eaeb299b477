"""``python -m diagnostics``. Thread settings first: they must precede the import of torch."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from diagnostics.cli import main  # noqa: E402

main()
