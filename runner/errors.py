"""User-facing errors: the CLI prints the message as one line and exits non-zero."""


class UsageError(Exception):
    """Bad input. The message names the problem and the fix, on one line."""
