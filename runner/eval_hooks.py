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
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runner.errors import UsageError

Hook = Callable[..., Mapping[str, float]]


@dataclass(frozen=True)
class EvalHookSpec:
    target: str  # "package.module:factory"
    every: int = 1  # after every N-th eval

    def __post_init__(self):
        module, _, attr = self.target.partition(":")
        if not module or not attr:
            raise UsageError(f"eval hook {self.target!r} is not of the form package.module:factory; fix its name")
        if self.every < 1:
            raise UsageError(f"eval hook {self.target!r}: every={self.every} must be >= 1")

    @classmethod
    def parse(cls, text: str) -> "EvalHookSpec":
        """``package.module:factory`` or ``package.module:factory@N`` (after every N-th eval)."""
        target, _, every = text.partition("@")
        if every and not every.isdigit():
            raise UsageError(f"eval hook {text!r}: {every!r} after @ must be a whole number of evals")
        return cls(target, int(every) if every else 1)

    def resolve(self) -> Callable[..., Hook]:
        module_name, _, attr = self.target.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise UsageError(f"eval hook {self.target!r} cannot be loaded ({e}); check the name") from None
        if not callable(factory):
            raise UsageError(f"eval hook {self.target!r} is not callable; name a class or function")
        return factory


class EvalHooks:
    """The hooks of one trial and the count of evals that paces them."""

    def __init__(self, specs, workload, data_rng, data_dir: str):
        self._hooks = [(spec.every, spec.resolve()(workload, data_rng, data_dir)) for spec in specs]
        self._evals = 0

    def after_eval(self, workload, model_params, model_state, rng, global_step: int, logger) -> None:
        self._evals += 1
        for every, hook in self._hooks:
            if self._evals % every == 0:
                for tag, value in hook(workload, model_params, model_state, rng, global_step).items():
                    logger.add_scalar(tag, float(value), global_step)
