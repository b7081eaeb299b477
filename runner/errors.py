"""User-facing errors and the command-line entry that turns them into one line and exit code 2."""

import logging
import sys
from collections.abc import Callable

PROGRESS = {"auto": None, "on": True, "off": False}  # --progress values; None: only on a terminal


class UsageError(Exception):
    """Bad input. The message names the problem and the fix, on one line."""


def user_errors() -> tuple[type[Exception], ...]:
    """Exceptions whose message is the whole story: printed as one line, never as a traceback."""
    from tuning.search_space import SearchSpaceError
    from workloads.registry import WorkloadError

    return UsageError, SearchSpaceError, WorkloadError


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def cli_main(body: Callable[[], int | None]) -> Callable[[list[str]], None]:
    """An ``absl.app.run`` main around ``body``: flags only, quiet logging, user errors as one line (exit 2),
    otherwise ``body``'s return value as the exit code."""

    def main(argv: list[str]) -> None:
        if len(argv) > 1:
            fail(f"unexpected arguments {argv[1:]}; flags are written --name=value")
        logging.getLogger().setLevel(logging.WARNING)  # absl's handler would print every INFO line
        try:
            code = body()
        except user_errors() as e:
            fail(str(e))
        sys.exit(code or 0)

    return main
