"""AlgoPerf tuning search spaces: parsing, validation, and reproducible quasi-random sampling.

Two JSON forms (AlgoPerf's ``tuning_search_space.json``):
- a dict ``{name: {"min", "max", "scaling": "log"|"linear"} | {"feasible_points": [...]}}``, sampled by a
  shifted Halton sequence (one prime base per dimension, the first 100 points skipped, a per-dimension random
  shift) as AlgoPerf does, except that the shift comes from a seed so points are reproducible;
- a list of fixed points, used in file order.

A submission may declare its hyperparameters (``HYPERPARAMETERS``: a dataclass type, or a mapping of names to
``Param``s or defaults); ``check`` then refuses a space naming a hyperparameter the submission does not have, a
point lacking one without a default, and values of the wrong kind or outside the declared interval. Submissions
that declare nothing (AlgoPerf's) get only the structural checks of ``parse``.
"""

import collections
import json
import keyword
import math
import numbers
import os
import sys
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any

import numpy as np

from common.errors import UsageError

HALTON_SKIP = 100


class SearchSpaceError(UsageError, ValueError):
    """A malformed search space; the message names the file, the problem and the fix."""


@dataclass(frozen=True)
class Range:
    min: float
    max: float
    scaling: str  # "log" | "linear"

    def value(self, u: float) -> float:
        if self.scaling == "log":
            return self.min * math.exp(u * math.log(self.max / self.min))
        return self.min + u * (self.max - self.min)


@dataclass(frozen=True)
class Choice:
    points: tuple

    def value(self, u: float) -> Any:
        return self.points[min(int(u * len(self.points)), len(self.points) - 1)]


@dataclass(frozen=True)
class SearchSpace:
    """Either ``dims`` (quasi-random) or ``fixed_points`` (a list used in order)."""

    source: str
    dims: tuple[tuple[str, Range | Choice], ...] = ()
    fixed_points: tuple[dict, ...] = ()

    @property
    def is_fixed(self) -> bool:
        return bool(self.fixed_points)

    def points(self, num: int, seed: int = 0) -> list[dict[str, Any]]:
        """The first ``num`` points: file order for a list, seeded shifted Halton for ranges."""
        if self.is_fixed:
            if num > len(self.fixed_points):
                raise SearchSpaceError(
                    f"{self.source}: {num} trials requested but the list holds {len(self.fixed_points)} points; "
                    f"lower --num_tuning_trials or add points"
                )
            return [dict(p) for p in self.fixed_points[:num]]
        shifts = np.random.default_rng(seed).random(len(self.dims))
        out = []
        for k in range(HALTON_SKIP + 1, HALTON_SKIP + 1 + num):
            point = {}
            for (name, dim), base, shift in zip(self.dims, _primes(len(self.dims)), shifts, strict=True):
                point[name] = dim.value((_radical_inverse(k, base) + shift) % 1.0)
            out.append(point)
        return out


def make_hyperparameters(point: dict[str, Any]):
    """AlgoPerf's hyperparameter object: a namedtuple('Hyperparameters', names) of one point."""
    return collections.namedtuple("Hyperparameters", sorted(point))(**point)


def load(path: str) -> SearchSpace:
    """Read and validate a search-space JSON file."""
    if not os.path.isfile(path):  # a FIFO or a device would block or never end
        what = "is not a regular file" if os.path.exists(path) else "does not exist"
        raise SearchSpaceError(f"tuning search space {path} {what}; pass an existing JSON file")
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SearchSpaceError(f"tuning search space {path} is not valid JSON ({e}); fix the file") from None
    except RecursionError:
        raise SearchSpaceError(
            f"tuning search space {path} nests arrays or objects too deeply to read; a search space is an object "
            f"of ranges or a list of points"
        ) from None
    except ValueError:  # json.JSONDecodeError is one too, caught above: this is Python's int-string limit
        raise SearchSpaceError(
            f"tuning search space {path} holds an integer of more than {sys.get_int_max_str_digits()} digits; "
            f"write hyperparameters as numbers of ordinary size"
        ) from None
    except OSError as e:
        raise SearchSpaceError(
            f"tuning search space {path} cannot be read ({e.strerror}); fix its permissions"
        ) from None
    return parse(raw, source=path)


def parse(raw: Any, source: str = "<search space>") -> SearchSpace:
    def fail(reason: str) -> SearchSpaceError:
        return SearchSpaceError(f"tuning search space {source}: {reason}")

    if isinstance(raw, list):
        if not raw:
            raise fail("the list of points is empty; add at least one point")
        for i, point in enumerate(raw):
            if not isinstance(point, dict) or not point:
                raise fail(f'point {i} is not a non-empty object of hyperparameters; write {{"name": value}}')
            for name, v in point.items():
                _check_name(name, fail)
                if not _is_value(v):
                    raise fail(f"point {i}: {name}={_short(v)} is not a number, string or boolean")
        return SearchSpace(source=source, fixed_points=tuple(raw))
    if not isinstance(raw, dict) or not raw:
        raise fail("expected a non-empty object of hyperparameter ranges or a list of points")
    dims = []
    for name in sorted(raw):
        _check_name(name, fail)
        dims.append((name, _parse_dim(name, raw[name], fail)))
    return SearchSpace(source=source, dims=tuple(dims))


def _parse_dim(name: str, spec: Any, fail) -> Range | Choice:
    if not isinstance(spec, dict):
        raise fail(f"{name} must be an object with min/max/scaling or feasible_points")
    if "feasible_points" in spec:
        points = spec["feasible_points"]
        if not isinstance(points, list) or not points:
            raise fail(f"{name} has empty feasible_points; list at least one value")
        bad = [p for p in points if not _is_value(p)]
        if bad:
            raise fail(f"{name} has non-numeric feasible point {_short(bad[0])}; use numbers, strings or booleans")
        return Choice(tuple(points))
    missing = [k for k in ("min", "max", "scaling") if k not in spec]
    if missing:
        raise fail(f"{name} lacks {', '.join(missing)}; give min, max and scaling (log or linear)")
    lo, hi, scaling = spec["min"], spec["max"], spec["scaling"]
    for key, v in (("min", lo), ("max", hi)):
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not _finite(v):
            raise fail(f"{name}.{key}={_short(v)} is not a finite number")
    if scaling not in ("log", "linear"):
        raise fail(f"{name} has unknown scaling {scaling!r}; use 'log' or 'linear'")
    if lo > hi:
        raise fail(f"{name} has min {lo} > max {hi}; swap them")
    if scaling == "log" and lo <= 0:
        raise fail(f"{name} uses log scaling with min {lo} <= 0; use a positive min or linear scaling")
    return Range(float(lo), float(hi), scaling)


def _check_name(name: str, fail) -> None:
    """Names become fields of AlgoPerf's Hyperparameters namedtuple: identifiers, not keywords, no leading _."""
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise fail(f"{name!r} is not a valid hyperparameter name; use letters, digits and _ (not first)")


def _is_value(v: Any) -> bool:
    if isinstance(v, bool | str):
        return True
    return isinstance(v, numbers.Real) and _finite(v)


def _finite(v: numbers.Real) -> bool:
    """Finite as a float: a JSON integer beyond float's range (10**400) is not (math.isfinite raises on it)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _short(v: Any) -> str:
    """``repr(v)``, cut to one readable piece (a 4000-digit integer is a value, not a message)."""
    text = repr(v)
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} characters)"


def _radical_inverse(k: int, base: int) -> float:
    """The k-th element of the van der Corput sequence in ``base``."""
    result, f = 0.0, 1.0 / base
    while k > 0:
        k, digit = divmod(k, base)
        result += digit * f
        f /= base
    return result


def _primes(n: int) -> list[int]:
    primes: list[int] = []
    candidate = 2
    while len(primes) < n:
        if all(candidate % p for p in primes if p * p <= candidate):
            primes.append(candidate)
        candidate += 1
    return primes


@dataclass(frozen=True)
class Param:
    """A declared hyperparameter: its default (``MISSING``: a point must give it) and the interval of its values."""

    default: Any = MISSING
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    @property
    def kind(self) -> type:
        """What its values are: str or bool when the default is one, else a number."""
        return type(self.default) if isinstance(self.default, str | bool) else numbers.Real

    def admits(self, v: Any) -> bool:
        if self.kind is not numbers.Real:
            return isinstance(v, self.kind)
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not _finite(v):
            return False
        above = v > self.lo if self.lo_open else v >= self.lo
        below = v < self.hi if self.hi_open else v <= self.hi
        return above and below

    def describe(self) -> str:
        if self.kind is not numbers.Real:
            return f"a {self.kind.__name__}"
        return f"a number in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


def bounds(lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False, hi_open: bool = False) -> dict:
    """``dataclasses.field(metadata=bounds(...))``: the interval of a hyperparameter declared as a dataclass field."""
    return {"bounds": {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}}


def declared(declaration: Any, owner: str) -> dict[str, Param] | None:
    """A submission's ``HYPERPARAMETERS`` as {name: Param}; None when it declares nothing."""
    if declaration is None:
        return None
    if is_dataclass(declaration) and isinstance(declaration, type):
        return {f.name: Param(default=f.default, **f.metadata.get("bounds", {})) for f in fields(declaration) if f.init}
    if isinstance(declaration, Mapping):
        return {str(k): v if isinstance(v, Param) else Param(default=v) for k, v in declaration.items()}
    raise UsageError(
        f"{owner}: HYPERPARAMETERS must be a dataclass type or a mapping of names to defaults, "
        f"not {type(declaration).__name__}; fix the submission"
    )


def check(space: SearchSpace, params: dict[str, Param] | None, owner: str) -> None:
    """Refuse a search space that does not fit the hyperparameters ``owner`` (a submission) declares."""
    if params is None:
        return
    known = ", ".join(sorted(params))

    def fail(reason: str) -> SearchSpaceError:
        return SearchSpaceError(f"tuning search space {space.source}: {reason} (known to {owner}: {known})")

    def value_ok(where: str, name: str, v: Any) -> None:
        if not params[name].admits(v):
            raise fail(f"{where}{name}={_short(v)} is not {params[name].describe()}; fix the value")

    required = {n for n, p in params.items() if p.default is MISSING}
    if space.is_fixed:
        for i, point in enumerate(space.fixed_points):
            unknown = sorted(set(point) - set(params))
            if unknown:
                raise fail(f"point {i} sets {', '.join(unknown)}, which the submission does not use; remove or rename")
            missing = sorted(required - set(point))
            if missing:
                raise fail(f"point {i} lacks {', '.join(missing)}, which has no default; add it")
            for name, v in point.items():
                value_ok(f"point {i}: ", name, v)
        return
    names = {name for name, _ in space.dims}
    unknown = sorted(names - set(params))
    if unknown:
        raise fail(f"{', '.join(unknown)} is not a hyperparameter of the submission; remove or rename it")
    missing = sorted(required - names)
    if missing:
        raise fail(f"{', '.join(missing)} has no default and no range; add it")
    for name, dim in space.dims:
        for v in (dim.min, dim.max) if isinstance(dim, Range) else dim.points:
            value_ok("", name, v)
