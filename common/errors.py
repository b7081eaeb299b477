"""The user-error type and the command-line entry that turns it into one line and exit code 2."""

import logging
import os
import sys
from collections.abc import Callable


class UsageError(Exception):
    """Bad input. The message names the problem and the fix, on one line. Every user-facing error type of
    kronbench (search spaces, workloads, checkpoints) derives from it, so one ``except`` catches them all."""


def user_errors() -> tuple[type[Exception], ...]:
    """Exceptions whose message is the whole story: printed as one line, never as a traceback."""
    return (UsageError,)


def reports_errors() -> bool:
    """Whether this process prints its user errors: every process but a torchrun rank other than 0. Rank 0 reports
    them once for all: every rank reads the same command line, and what rank 0 decides it passes to the others
    (runner.distributed.decided_by_rank0)."""
    return "LOCAL_RANK" not in os.environ or os.environ.get("RANK", "0") == "0"


def fail(message: str) -> None:
    if reports_errors():
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
        except UsageError as e:
            fail(" ".join(str(e).split("\n")))
        sys.exit(code or 0)

    return main


def parse_flags(argv: list[str]) -> list[str]:
    """``absl.app.run``'s flags_parser: an unknown flag or a value of the wrong type is one line and exit 2
    (absl's own prints two lines and exits 1)."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(f"{e}; see --help for the flags")
