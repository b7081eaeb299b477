"""Eval hooks: extra measurements the runner takes after an eval, logged to TensorBoard, untimed (as logging is).

The runner knows only this interface, never what a hook computes: a hook is named by a string
``"package.module:factory"`` and imported when a trial starts, so the code that defines it may sit above the
runner (``diagnostics``) without the runner importing it.

- ``factory(workload, data_rng, data_dir) -> hook`` runs once per trial, before training (it may draw data);
- ``hook(workload, model_params, model_state, rng, global_step) -> {tag: value}`` runs after every
  ``every``-th eval of this run (counted from the start or resume of the process), and each value is written
  as the TensorBoard scalar ``tag`` at ``global_step``.
"""

import importlib
import inspect
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from common.errors import UsageError

Hook = Callable[..., Mapping[str, float]]
FACTORY_ARGS = ("workload", "data_rng", "data_dir")
HOOK_ARGS = ("workload", "model_params", "model_state", "rng", "global_step")


class EvalHookError(UsageError):
    """A hook that failed while a trial ran (raised, or returned something other than numbers): the trial ends."""


def _reason(e: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    first = (str(e).strip().splitlines() or [""])[0][:200]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _check_signature(fn, args: tuple[str, ...], what: str) -> None:
    """``fn`` can be called with ``args`` positionally (when Python can tell: builtins may not say)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args)
    except TypeError:
        raise UsageError(
            f"{what} has the signature {signature} but is called as ({', '.join(args)}); fix its parameters"
        ) from None


@dataclass(frozen=True)
class EvalHookSpec:
    target: str  # "package.module:factory"
    every: int = 1  # after every N-th eval

    def __post_init__(self):
        module, _, attr = self.target.partition(":")
        if not all(p.isidentifier() for p in module.split(".")) or not attr.isidentifier():
            raise UsageError(f"eval hook {self.target!r} is not of the form package.module:factory; fix its name")
        if self.every < 1:
            raise UsageError(f"eval hook {self.target!r}: every={self.every} must be >= 1")

    @classmethod
    def parse(cls, text: str) -> "EvalHookSpec":
        """``package.module:factory`` or ``package.module:factory@N`` (after every N-th eval)."""
        target, _, every = text.partition("@")
        if every and not (every.isascii() and every.isdigit()):
            raise UsageError(f"eval hook {text!r}: {every!r} after @ must be a whole number of evals")
        return cls(target, int(every) if every else 1)

    def resolve(self) -> Callable[..., Hook]:
        module_name, _, attr = self.target.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise UsageError(f"eval hook {self.target!r} cannot be loaded ({e}); check the name") from None
        except Exception as e:  # the hook's module is user code: it may raise, or not even parse, on import
            raise UsageError(f"eval hook {self.target!r} cannot be loaded ({_reason(e)}); fix its module") from None
        if not callable(factory):
            raise UsageError(f"eval hook {self.target!r} is not callable; name a class or function")
        _check_signature(factory, FACTORY_ARGS, f"eval hook {self.target!r}")
        return factory

    def build(self, workload, data_rng, data_dir: str) -> Hook:
        """The trial's hook: the factory's product, checked to be callable with the hook's arguments."""
        try:
            hook = self.resolve()(workload, data_rng, data_dir)
        except UsageError:
            raise
        except Exception as e:
            raise UsageError(f"eval hook {self.target!r} failed to start ({_reason(e)}); fix it or drop it") from None
        if not callable(hook):
            raise UsageError(
                f"eval hook {self.target!r} returned {type(hook).__name__}, not a callable hook; return a function "
                f"of ({', '.join(HOOK_ARGS)})"
            )
        _check_signature(hook, HOOK_ARGS, f"eval hook {self.target!r} returned a hook that")
        return hook


class EvalHooks:
    """The hooks of one trial and the count of evals that paces them."""

    def __init__(self, specs, workload, data_rng, data_dir: str):
        self._hooks = [(spec, spec.build(workload, data_rng, data_dir)) for spec in specs]
        self._evals = 0

    def after_eval(self, workload, model_params, model_state, rng, global_step: int, logger) -> None:
        """Each due hook's values, all checked before any is logged; a failing hook is an EvalHookError."""
        self._evals += 1
        for spec, hook in self._hooks:
            if self._evals % spec.every == 0:
                for tag, value in _measure(spec, hook, (workload, model_params, model_state, rng, global_step)):
                    logger.add_scalar(tag, value, global_step)


def _measure(spec: EvalHookSpec, hook: Hook, args: tuple) -> list[tuple[str, float]]:
    where = f"eval hook {spec.target!r} at step {args[-1]}"
    try:
        values = hook(*args)
    except Exception as e:  # user code
        raise EvalHookError(f"{where} raised {_reason(e)}; fix the hook or drop it") from None
    if not isinstance(values, Mapping):
        raise EvalHookError(f"{where} returned {type(values).__name__}, not a mapping of tags to numbers; fix it")
    out = []
    for tag, value in values.items():
        if not isinstance(tag, str) or isinstance(value, bool) or not _is_number(value):
            raise EvalHookError(f"{where} returned {tag!r}: {_short(value)}, not a number; return {{tag: number}}")
        out.append((tag, float(value)))
    return out


def _is_number(value) -> bool:
    """A real number or a one-element tensor or array (what ``float`` takes; not a string)."""
    if isinstance(value, numbers.Real):
        return True
    try:
        return hasattr(type(value), "__float__") and isinstance(float(value), float)
    except Exception:  # noqa: BLE001  (torch raises RuntimeError for a tensor of many elements)
        return False


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
