"""Time to target finer than the eval grid: copies of the model between evals, evaluated at the first crossing.

AlgoPerf checks the target only at evals, so its time to target is known to within one eval period (2-10 s on the
CPU suite, 6-25% of its times to target). With ``--refine_time_to_target_sec=P`` the runner also copies the model
every P seconds of submission time between evals (outside the clock, like the eval itself). When an eval first
meets the validation target, the copies taken since the previous eval are evaluated in order, and the first that
meets the target gives the refined step and time, reported beside AlgoPerf's. The grid's evals, their log and
AlgoPerf's time to target are unchanged; the refinement costs the copies' memory (at most eval_period / P of them)
and as many extra evaluations, once per trial.
"""

import logging
import math
from dataclasses import asdict, dataclass

from runner.clock import get_time

log = logging.getLogger("kronbench.runner")


@dataclass(frozen=True)
class Crossing:
    """Where the validation target was first met: the refined point and the grid eval that found it."""

    step: int
    time: float  # submission seconds
    grid_step: int
    grid_time: float
    evaluated: int  # copies evaluated to find it
    seconds: float  # wall time those evaluations took (untimed)
    period: float

    def to_dict(self) -> dict:
        return asdict(self)


class Refiner:
    """Keeps the copies since the last eval and finds the crossing once; ``fw`` is the runner's framework
    (``snapshot``, ``swapped``), ``crossing`` what a resumed trial found before."""

    def __init__(self, fw, workload, period: float, crossing: Crossing | None = None):
        if not (period > 0 and math.isfinite(period)):
            raise ValueError(f"refinement period {period} must be a positive number of seconds")
        self.fw, self.workload, self.period = fw, workload, period
        self.crossing = crossing  # a resumed trial may have found it before
        self._copies: list[tuple[int, float, object]] = []  # (step, submission time, copy) since the last eval
        self._next = period

    def due(self, state) -> bool:
        """After a step without an eval: whether P seconds have passed since the last copy or eval (and no crossing
        is known yet), so the model is to be copied; the loop checks it is finite first."""
        return self.crossing is None and state.train_state["accumulated_submission_time"] >= self._next

    def copy(self, state) -> None:
        """Keep a copy of the model at this step."""
        now = state.train_state["accumulated_submission_time"]
        self._copies.append((state.global_step, now, self.fw.snapshot(state.model_params, state.model_state)))
        self._next = now + self.period

    def evaluated(self, state, grid_time: float, first_crossing: bool, evaluate) -> Crossing | None:
        """After a grid eval: drop the copies; on the eval that first met the target, the crossing (new only).
        ``evaluate(params, model_state, step)`` is the grid's untimed eval (None if it ran out of memory)."""
        copies, self._copies = self._copies, []
        self._next = state.train_state["accumulated_submission_time"] + self.period
        if not first_crossing or self.crossing is not None:
            return None
        start, step, time, evaluated = get_time(), state.global_step, grid_time, 0
        for copy_step, copy_time, copy in copies:
            evaluated += 1
            with self.fw.swapped(state.model_params, state.model_state, copy) as (params, model_state):
                result = evaluate(params, model_state, copy_step)
            if result is not None and self.workload.has_reached_validation_target(result):
                step, time = copy_step, copy_time
                break
        self.crossing = Crossing(step, time, state.global_step, grid_time, evaluated, get_time() - start, self.period)
        log.info("refined time to target: step %d, %.2f s (grid: %d, %.2f s)", step, time, state.global_step, grid_time)
        return self.crossing
