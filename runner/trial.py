"""What one trial is given (TrialConfig), carries from step to step (TrialState) and returns (TrialResult)."""

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from common import layout

SELF_TUNING_BUDGET_FACTOR = 1.5
DIVERGED_REASON = "non-finite training loss or parameters"
# What a submission raises to say its training diverged: Python's error for a failed floating-point operation, as
# kronbench's optimizers raise it for a non-finite gradient or Kronecker factor (precond/guards.py, precond_jax).
# It ends the trial as a divergence; any other error still ends the run with its traceback.
DIVERGENCE_ERRORS = (FloatingPointError,)


@dataclass(frozen=True)
class TrialConfig:
    workload_name: str
    framework: str = "pytorch"
    data_dir: str = ""
    imagenet_v2_data_dir: str | None = None
    tuning_ruleset: str = "external"
    max_global_steps: int | None = None
    save_checkpoints: bool = True
    rng_seed: int | None = None
    progress: bool | None = None  # None: only when stderr is a terminal
    eval_hooks: tuple = ()  # runner.eval_hooks.EvalHookSpec: measurements after evals, to TensorBoard
    refine_time_to_target_sec: float = 0.0  # copy the model this often between evals (runner/refine.py); 0: off
    jax_batch_layout: str = "jit"  # runner/jax_layout.py: "pmap" for AlgoPerf v0.5/v0.6 JAX submissions
    flags: dict = field(default_factory=dict)

    @property
    def budget_factor(self) -> float:
        return SELF_TUNING_BUDGET_FACTOR if self.tuning_ruleset == "self" else 1.0


@dataclass
class TrialResult:
    trial_dir: str | None
    global_step: int
    submission_time: float
    budget_sec: float
    metric: str
    target: float
    reached_validation: bool
    reached_test: bool
    step_to_target: int | None = None
    time_to_target: float | None = None
    last_validation: float | None = None
    eval_results: list = field(default_factory=list)
    train_state: dict = field(default_factory=dict)
    diverged_at_step: int | None = None  # the step whose loss or parameters were not finite
    diverged_reason: str = DIVERGED_REASON  # or what the submission raised (DIVERGENCE_ERRORS)
    refined_step_to_target: int | None = None  # runner/refine.py, when on and the target was reached
    refined_time_to_target: float | None = None
    finished_earlier: bool = False  # --resume_last_run found the trial finished and left it as it was
    test_target: float | None = None  # the workload's; training stops once both targets are passed

    def summary(self, label: str) -> str:
        if self.finished_earlier:
            label += " (finished by an earlier run; left as it was)"
        steps = f"{self.global_step} steps, {self.submission_time:.1f} s submission time"
        last = "n/a" if self.last_validation is None else f"{self.last_validation:.4g}"
        if self.diverged_at_step is not None:
            return (
                f"{label}: diverged at step {self.diverged_at_step} ({self.diverged_reason}; "
                f"did NOT reach validation {self.metric} target {self.target:g}; ran {steps})"
            )
        if self.reached_validation:
            return (
                f"{label}: reached validation {self.metric} target {self.target:g} at step {self.step_to_target}, "
                f"{self.time_to_target:.2f} s submission time{self._refined()} (ran {steps}; last {last}"
                f"{self._went_on()})"
            )
        return (
            f"{label}: did NOT reach validation {self.metric} target {self.target:g} "
            f"(ran {steps} of a {self.budget_sec:g} s budget; last {last}{self._went_on()})"
        )

    def _went_on(self) -> str:
        """Why training went past the step to target, or past an eval equal to the target: AlgoPerf's runner
        stops only once the validation and the test target are both passed strictly, while its scorer counts an
        eval equal to the validation target as reaching it (common/targets.py)."""
        notes = []
        equal = self._equal_at("validation", self.target)
        if equal is not None and (self.step_to_target is None or equal < self.step_to_target):
            notes.append(
                f"validation {self.metric} equalled the target at step {equal}: scoring counts that eval, the runner "
                "stops only past the target"
            )
        went_on = self.reached_validation and self.step_to_target is not None and self.global_step > self.step_to_target
        if went_on and self.test_target is not None:
            test = f"test {self.metric} target {self.test_target:g}"
            test_equal = self._equal_at("test", self.test_target)
            if self.reached_test:
                notes.append(f"went on until the {test} was passed too: the runner stops only on both")
            elif test_equal is not None:
                notes.append(
                    f"went on: the {test} was equalled at step {test_equal}, not passed, and the runner stops only "
                    "once both targets are passed"
                )
            else:
                notes.append(f"went on: the {test} was not passed, and the runner stops only once both are")
        return "".join(f"; {n}" for n in notes)

    def _equal_at(self, split: str, target: float) -> int | None:
        """The first eval step whose ``split`` metric equals ``target`` exactly, else None."""
        key = f"{split}/{self.metric}"
        return next((step for step, r in self.eval_results if r.get(key) == target), None)

    def _refined(self) -> str:
        if self.refined_time_to_target is None:
            return ""
        return f" (refined: step {self.refined_step_to_target}, {self.refined_time_to_target:.2f} s)"


INITIAL_TRAIN_STATE = MappingProxyType(
    {
        "validation_goal_reached": False,
        "test_goal_reached": False,
        "is_time_remaining": True,
        "last_eval_time": 0,
        "training_complete": False,
        "accumulated_submission_time": 0,
        "accumulated_eval_time": 0,
        "accumulated_logging_time": 0,
        "last_step_end_time": None,
    }
)


@dataclass
class TrialState:
    """What a trial carries from step to step: a checkpoint holds exactly this (runner/recorder.py)."""

    model_params: Any
    model_state: Any
    optimizer_state: Any
    train_state: dict = field(default_factory=lambda: dict(INITIAL_TRAIN_STATE))
    eval_results: list = field(default_factory=list)  # (step, result); handed to the submission, as AlgoPerf does
    global_step: int = 0
    preemption_count: int = 0
    refined: Any = None  # runner.refine.Crossing, once found (a resumed trial reads it from its earlier meta data)


PLAIN = (type(None), bool, int, float, str)  # a result's values, besides tensors and numpy scalars


def saved_state_problem(train_state: Any, eval_results: Any, global_step: Any, preemption_count: Any) -> str | None:
    """What is wrong with a checkpoint's record of the trial's plain state (checkpoints are user input), or None.
    Keys of ``train_state`` it lacks keep their initial values; unknown keys and wrong types are problems."""
    for name, value, hi in (
        ("global_step", global_step, layout.MAX_STEP),
        ("preemption_count", preemption_count, 10**6),
    ):
        if type(value) is not int or not 0 <= value <= hi:
            return f"{name}={_short(value)} is not a whole number in [0, {hi}]"
    if type(train_state) is not dict:
        return f"train_state is a {type(train_state).__name__}, not a mapping"
    for key, value in train_state.items():
        if key not in INITIAL_TRAIN_STATE:
            return f"train_state has an unknown entry {_short(key)}"
        initial = INITIAL_TRAIN_STATE[key]
        ok = type(value) is bool if isinstance(initial, bool) else _is_time(value, none_ok=initial is None)
        if not ok:
            return f"train_state[{key!r}]={_short(value)} is not a {'bool' if isinstance(initial, bool) else 'time'}"
    if type(eval_results) not in (list, tuple):
        return f"eval_results is a {type(eval_results).__name__}, not a list"
    previous = 0
    for i, entry in enumerate(eval_results):
        step, result = entry if type(entry) in (list, tuple) and len(entry) == 2 else (None, None)
        if type(step) is not int or not previous <= step <= global_step or type(result) is not dict:
            return f"eval_results[{i}]={_short(entry)} is not a (step, results) pair within global_step {global_step}"
        if not all(type(k) is str and (type(v) in PLAIN or hasattr(v, "item")) for k, v in result.items()):
            return f"eval_results[{i}] holds a result that is not a plain name and number"
        previous = step
    return None


def _is_time(value: Any, none_ok: bool) -> bool:
    if value is None:
        return none_ok
    return type(value) in (int, float) and value == value and 0 <= value < float("inf")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
