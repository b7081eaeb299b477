"""Where a dataset's files are found: ``--data_dir``, then an installed package, then system paths.

Every loader asks ``locate`` and, when nothing is found, the user gets one line naming the places searched
and the command that installs the data.
"""

import importlib.util
import os

from workloads.registry import WorkloadError


def package_dir(package: str) -> str | None:
    """The directory of an installed package, found without importing it (some fail to import)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def locate(
    dataset: str,
    relative: str,
    data_dir: str = "",
    packages: tuple[tuple[str, str], ...] = (),
    system: tuple[str, ...] = (),
    how_to: str = "run `make data`",
) -> str:
    """The first existing path among ``data_dir/relative``, ``data_dir/<dataset>/relative``, each
    ``(package, subdir)``'s ``<package dir>/subdir/relative`` and each ``system`` dir's ``relative``."""
    candidates = []
    if data_dir:
        d = os.path.expanduser(data_dir)
        candidates += [os.path.join(d, relative), os.path.join(d, dataset, relative)]
    for package, subdir in packages:
        root = package_dir(package)
        if root is not None:
            candidates.append(os.path.join(root, subdir, relative))
    candidates += [os.path.join(s, relative) for s in system]
    for path in candidates:
        if os.path.exists(path):
            return path
    places = ([f"--data_dir={data_dir!r}"] if data_dir else []) + [f"package {p}" for p, _ in packages] + list(system)
    raise WorkloadError(f"{dataset} ({relative}) not found in {', '.join(places)}; {how_to}")
