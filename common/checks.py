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


NAME_MAX = 255  # bytes in one file name (Linux and macOS file systems)


def _utf8(flag: str, value: str) -> None:
    """Kronbench records paths in UTF-8 files (flags, manifests): a name that is not UTF-8 text (bytes the
    command line could not decode arrive as lone surrogates) could be created but never recorded."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"--{flag}={value!r} is not UTF-8 text; use a name of UTF-8 characters") from None


def _name_length(flag: str, value: str, name: str) -> None:
    size = len(name.encode("utf-8"))
    if size > NAME_MAX:
        raise UsageError(
            f"--{flag}: the folder name {name[:40]}... is {size} bytes, over the file system's {NAME_MAX}; use a "
            f"shorter name"
        )


def experiment_name(value: str) -> None:
    """A plain folder name: no separator, not absolute, not ``.``/``..``, so every output stays inside
    --experiment_dir; UTF-8, and short enough to be a file name."""
    if not value or os.sep in value or (os.altsep and os.altsep in value) or value in (".", ".."):
        raise UsageError(
            f"--experiment_name={value!r} must be a plain folder name (no '/', not '.' or '..'); "
            f"outputs stay inside --experiment_dir"
        )
    _utf8("experiment_name", value)
    _name_length("experiment_name", value, value)


def make_dirs(flag: str, path: str) -> None:
    """``os.makedirs(path, exist_ok=True)``, a refusal (one line) where the file system will not create it, e.g.
    under /proc: the checks above cannot tell, and the first folder that fails means nothing was created."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UsageError(
            f"--{flag}: cannot create {e.filename or path} ({e.strerror}); pass a directory you can write to"
        ) from None


def output_dir(flag: str, value: str) -> None:
    """``value`` is, or can become, a writable directory: UTF-8, folder names the file system takes, not a file,
    not under a file, writable where it exists."""
    _utf8(flag, value)
    path = os.path.abspath(os.path.expanduser(value))
    for name in path.split(os.sep):
        _name_length(flag, value, name)
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
