"""Checks of the flags both command lines share (``python -m runner`` and ``python -m tuning``): one owner each."""

import os

from common.errors import UsageError

MAX_SEED = 2**32 - 1
FRAMEWORKS = ("pytorch", "jax")  # the names the experiment layout knows; SUPPORTED_FRAMEWORKS are those that run
SUPPORTED_FRAMEWORKS = ("pytorch", "jax")
RULESETS = ("external", "self")


def max_global_steps(value: int | None) -> None:
    if value is not None and value < 1:
        raise UsageError(f"--max_global_steps={value} must be at least 1 (leave it unset for no limit)")


def refine_time_to_target_sec(value: float) -> None:
    if not 0 <= value < float("inf"):
        raise UsageError(
            f"--refine_time_to_target_sec={value} must be a number of seconds >= 0 (e.g. 1; 0 turns refinement off)"
        )


def rng_seed(value: int | None) -> None:
    if value is not None and not 0 <= value <= MAX_SEED:
        raise UsageError(f"--rng_seed={value} must lie in [0, 2**32 - 1]; pick another seed or leave it unset")


def data_dir(value: str | None) -> None:
    if value and not os.path.isdir(os.path.expanduser(value)):
        raise UsageError(f"--data_dir={value} is not a directory; pass an existing one or leave it unset")


def experiment_name(value: str) -> None:
    """A plain folder name: no separator, not absolute, not ``.``/``..``, so every output stays inside
    --experiment_dir."""
    if not value or os.sep in value or (os.altsep and os.altsep in value) or value in (".", ".."):
        raise UsageError(
            f"--experiment_name={value!r} must be a plain folder name (no '/', not '.' or '..'); "
            f"outputs stay inside --experiment_dir"
        )


def output_dir(flag: str, value: str) -> None:
    """``value`` is, or can become, a writable directory: not a file, not under a file, writable where it exists."""
    path = os.path.abspath(os.path.expanduser(value))
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"--{flag}={value}: {existing} is a file, not a directory; pass a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--{flag}={value}: {existing} is not writable; pass a directory you can write to")


def no_links(base: str, path: str) -> None:
    """Refuse a symbolic link on the way from ``base`` (--experiment_dir, the user's own choice, which may itself be
    a link) down to ``path``, or among the entries of ``path`` when it is a folder: kronbench writes and deletes
    only through real folders below --experiment_dir, so nothing outside it changes (a link planted in the tree
    could point anywhere). ``path`` need not exist yet."""
    base, path = os.path.abspath(os.path.expanduser(base)), os.path.abspath(os.path.expanduser(path))
    rel = os.path.relpath(path, base)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise ValueError(f"{path} is not below {base}")
    current, links = base, []
    for part in [] if rel == os.curdir else rel.split(os.sep):
        current = os.path.join(current, part)
        if os.path.islink(current):
            links.append(current)
            break
    if not links and os.path.isdir(path):
        links = sorted(os.path.join(path, e.name) for e in os.scandir(path) if e.is_symlink())
    if links:
        raise UsageError(
            f"{links[0]} is a symbolic link (to {os.readlink(links[0])}); kronbench never writes or deletes through "
            f"a link below --experiment_dir: remove the link or pick another --experiment_dir/--experiment_name"
        )


PROGRESS = {"auto": None, "on": True, "off": False}  # --progress values; None: only on a terminal


def framework(value: str) -> None:
    if value not in SUPPORTED_FRAMEWORKS:
        raise UsageError(f"--framework={value} is not supported; use {' or '.join(SUPPORTED_FRAMEWORKS)}")


def tuning_ruleset(value: str) -> None:
    if value not in RULESETS:
        raise UsageError(f"unknown --tuning_ruleset={value!r}; use external or self")
