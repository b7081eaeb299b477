"""Kept for modules not yet moved to ``common.errors`` (scoring); new code imports ``common.errors``."""

from common.errors import UsageError, cli_main, fail, user_errors  # noqa: F401
