"""Module aliases for foreign submissions whose code imports one package under several names.

A package vendored inside a submission may import itself by the name it had in its home repository
(``submissions_algorithms.leaderboard....optimizers.x``), by a folder-relative name (``optimizers.x``) and by a
bare one (``x``, with its folder on the path). Adding folders or symlinks to ``sys.path`` makes every name
importable but loads the file once per name, so a class from one copy fails ``isinstance`` against the same class
of another. An alias instead makes the name resolve to the very module object of its target.

    install({"shampoo_types": "optimizers.distributed_shampoo.shampoo_types", "long.prefix": ""})

maps ``alias`` and ``alias.sub`` to ``target`` and ``target.sub``; an empty target drops the prefix. Strict
prefixes of an alias (``long`` above) become empty packages, so the dotted name walks through them.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, aliases: dict[str, str]):
        self.aliases = dict(aliases)
        self.stems = {a.rsplit(".", i)[0] for a in aliases for i in range(1, a.count(".") + 1)}

    def target_of(self, fullname: str) -> str | None:
        for alias, target in self.aliases.items():
            if fullname == alias or fullname.startswith(alias + "."):
                rest = fullname[len(alias) :].lstrip(".")
                return ".".join(p for p in (target, rest) if p)  # "": the alias itself, with an empty target
        return "" if fullname in self.stems else None

    def find_spec(self, fullname, path=None, target=None):
        if self.target_of(fullname) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        target = self.target_of(spec.name)
        if not target:  # a stem of an alias, or an alias of nothing: an empty package to walk through
            module = types.ModuleType(spec.name)
            module.__path__ = []
            return module
        return importlib.import_module(target)

    def exec_module(self, module):
        """The target ran when it was imported; a stem has nothing to run."""


def parse(entries: list[str]) -> dict[str, str]:
    """``["alias=target", ...]`` as a dict; ValueError naming a malformed entry."""
    out = {}
    for entry in entries:
        alias, sep, target = entry.partition("=")
        names = [alias] + ([target] if target else [])
        if not sep or not all(n and all(p.isidentifier() for p in n.split(".")) for n in names):
            raise ValueError(
                f"module alias {entry!r} is not of the form alias=target (dotted names; empty target drops the prefix)"
            )
        out[alias] = target
    return out


def install(aliases: dict[str, str]) -> None:
    """Resolve each alias (and its submodules) to its target from now on in this process. An alias whose top-level
    name is already a module (kronbench's, the standard library's, an installed package's) is a ValueError: it
    would hide that module from everything that imports it, not only from the submission."""
    for alias in aliases:
        top = alias.split(".")[0]
        if top in sys.modules or importlib.util.find_spec(top) is not None:
            raise ValueError(
                f"module alias {alias!r} would hide the importable module {top!r}; alias only names that do not "
                f"import otherwise (the submission's vendored ones)"
            )
    if aliases:
        sys.meta_path.insert(0, _AliasFinder(aliases))
