"""``algoperf.spec``: the AlgoPerf v0.6 API (enums, type aliases, the Workload base class, errors).

Written from the contract in the AlgoPerf documentation; enum values match the official ones so that logs
and checkpoints are interchangeable.
"""

import abc
import enum
from collections.abc import Callable, Iterator
from typing import Any


class LossType(enum.Enum):
    SOFTMAX_CROSS_ENTROPY = 0
    SIGMOID_CROSS_ENTROPY = 1
    MEAN_SQUARED_ERROR = 2
    CTC_LOSS = 3
    MEAN_ABSOLUTE_ERROR = 4


class ForwardPassMode(enum.Enum):
    TRAIN = 0
    EVAL = 1


class ParameterType(enum.Enum):
    WEIGHT = 0
    BIAS = 1
    CONV_WEIGHT = 2
    BATCH_NORM_SCALE = 3
    BATCH_NORM_BIAS = 4
    LAYER_NORM_SCALE = 5
    LAYER_NORM_BIAS = 6
    EMBEDDING = 7
    ATTENTION_Q = 8
    ATTENTION_K = 9
    ATTENTION_V = 10
    ATTENTION_OUT = 11
    ATTENTION_QKV = 12
    ATTENTION_KV = 13
    ATTENTION_BIAS = 14


class ShapeTuple:
    """A parameter shape that tree utilities treat as a leaf."""

    def __init__(self, shape_tuple: tuple[int, ...]):
        self.shape_tuple = tuple(shape_tuple)

    def __repr__(self) -> str:
        return f"ShapeTuple({self.shape_tuple})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapeTuple) and self.shape_tuple == other.shape_tuple

    def __hash__(self) -> int:
        return hash(self.shape_tuple)


Tensor = Any
Shape = tuple[int, ...] | ShapeTuple
ParameterKey = str
ParameterContainer = Any  # torch.nn.Module (possibly DDP-wrapped) or a nested dict of arrays
ParameterShapeTree = dict[ParameterKey, Any]
ParameterTypeTree = dict[ParameterKey, Any]
RandomState = Any
OptimizerState = dict[str, Any] | tuple[Any, Any]
Hyperparameters = Any
Timing = int
Steps = int
ModelAuxiliaryState = Any
ModelInitState = tuple[ParameterContainer, ModelAuxiliaryState]
UpdateReturn = tuple[OptimizerState, ParameterContainer, ModelAuxiliaryState]


class TrainingCompleteError(Exception):
    """Raised by ``update_params`` to end training; the runner then does a final evaluation."""


class Workload(metaclass=abc.ABCMeta):
    """An AlgoPerf workload: data, model, loss, evaluation, targets and budgets."""

    def __init__(self, *args, **kwargs) -> None:
        del args, kwargs
        self._param_shapes: ParameterShapeTree | None = None
        self._param_types: ParameterTypeTree | None = None
        self._eval_iters: dict[str, Iterator] = {}
        self.metrics_logger = None

    # --- targets -------------------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def target_metric_name(self) -> str: ...

    @property
    @abc.abstractmethod
    def validation_target_value(self) -> float: ...

    @property
    @abc.abstractmethod
    def test_target_value(self) -> float: ...

    @abc.abstractmethod
    def has_reached_validation_target(self, eval_result: dict[str, float]) -> bool: ...

    @abc.abstractmethod
    def has_reached_test_target(self, eval_result: dict[str, float]) -> bool: ...

    # --- data ----------------------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def loss_type(self) -> LossType: ...

    @property
    @abc.abstractmethod
    def num_train_examples(self) -> int: ...

    @property
    @abc.abstractmethod
    def eval_batch_size(self) -> int: ...

    @property
    @abc.abstractmethod
    def num_eval_train_examples(self) -> int: ...

    @property
    @abc.abstractmethod
    def num_validation_examples(self) -> int: ...

    @property
    @abc.abstractmethod
    def num_test_examples(self) -> int | None: ...

    @property
    @abc.abstractmethod
    def train_mean(self) -> Any: ...

    @property
    @abc.abstractmethod
    def train_stddev(self) -> Any: ...

    @abc.abstractmethod
    def _build_input_queue(
        self,
        data_rng: RandomState,
        split: str,
        data_dir: str,
        global_batch_size: int,
        cache: bool | None = None,
        repeat_final_dataset: bool | None = None,
        num_batches: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """An iterator of batches: dicts with 'inputs', 'targets' (and optionally 'weights')."""

    # --- budgets -------------------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def max_allowed_runtime_sec(self) -> int: ...

    @property
    @abc.abstractmethod
    def eval_period_time_sec(self) -> int: ...

    @property
    @abc.abstractmethod
    def step_hint(self) -> int:
        """Approximately the number of steps the baseline takes within the budget."""

    # --- model ---------------------------------------------------------------------------------------------
    @property
    def param_shapes(self) -> ParameterShapeTree:
        if self._param_shapes is None:
            raise ValueError("workload.init_model_fn() must be called before workload.param_shapes")
        return self._param_shapes

    @property
    def model_params_types(self) -> ParameterTypeTree:
        if self._param_types is None:
            raise ValueError("workload.init_model_fn() must be called before workload.model_params_types")
        return self._param_types

    @abc.abstractmethod
    def is_output_params(self, param_key: ParameterKey) -> bool: ...

    @abc.abstractmethod
    def init_model_fn(self, rng: RandomState) -> ModelInitState: ...

    @abc.abstractmethod
    def model_fn(
        self,
        params: ParameterContainer,
        augmented_and_preprocessed_input_batch: dict[str, Tensor],
        model_state: ModelAuxiliaryState,
        mode: ForwardPassMode,
        rng: RandomState,
        update_batch_norm: bool,
        dropout_rate: float,
    ) -> tuple[Tensor, ModelAuxiliaryState]: ...

    @abc.abstractmethod
    def loss_fn(
        self,
        label_batch: Tensor,
        logits_batch: Tensor,
        mask_batch: Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Tensor]:
        """Return {'summed', 'n_valid_examples', 'per_example'}; no regularisation."""

    def attach_metrics_logger(self, metrics_logger) -> None:
        self.metrics_logger = metrics_logger

    # --- evaluation ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _eval_model_on_split(
        self,
        split: str,
        num_examples: int,
        global_batch_size: int,
        params: ParameterContainer,
        model_state: ModelAuxiliaryState,
        rng: RandomState,
        data_dir: str,
        global_step: int = 0,
    ) -> dict[str, float]: ...

    def eval_model(
        self,
        global_batch_size: int,
        params: ParameterContainer,
        model_state: ModelAuxiliaryState,
        rng: RandomState,
        data_dir: str,
        imagenet_v2_data_dir: str | None,
        global_step: int,
    ) -> dict[str, float]:
        """Evaluate on eval_train, validation and (when it exists) test; keys are '<split>/<metric>'."""
        splits = [("eval_train", "train", self.num_eval_train_examples, data_dir)]
        splits.append(("validation", "validation", self.num_validation_examples, data_dir))
        if self.num_test_examples is not None:
            splits.append(("test", "test", self.num_test_examples, imagenet_v2_data_dir or data_dir))
        results: dict[str, float] = {}
        for split, prefix, num_examples, split_dir in splits:
            try:
                metrics = self._eval_model_on_split(
                    split, num_examples, global_batch_size, params, model_state, rng, split_dir, global_step
                )
            except NotImplementedError:
                if split != "test":
                    raise
                continue
            results.update({f"{prefix}/{k}": v for k, v in metrics.items()})
            if prefix != "train":
                results[f"{prefix}/num_examples"] = num_examples
        return results


InitOptimizerFn = Callable[..., OptimizerState]
UpdateParamsFn = Callable[..., UpdateReturn]
PrepareForEvalFn = Callable[..., UpdateReturn]
DataSelectionFn = Callable[..., dict[str, Tensor]]
