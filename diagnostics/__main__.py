"""``python -m diagnostics``. Thread settings first: they must precede the import of torch."""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

from diagnostics.cli import main  # noqa: E402

main()
