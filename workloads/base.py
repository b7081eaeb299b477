"""The shape every kronbench workload shares: splits held in memory, a model built from a seed, a generic
``model_fn``, and evaluation over fixed leading subsets of each split.

A workload provides ``load_splits`` (tensors per split), ``build_model``, ``loss_fn``, ``summarize`` (metrics
from the evaluation outputs) and its constants; everything else follows AlgoPerf's contract here.
"""

from collections.abc import Iterable, Iterator

import torch
from torch import nn

from algoperf import spec
from algoperf.pytorch_utils import pytorch_setup
from common import targets
from workloads import arrays, ddp
from workloads.nn import param_types, seeded_model, set_batch_norm_update

DEVICE = pytorch_setup()[2]
SPLITS = ("train", "validation", "test")
_LOADED: dict[tuple, dict[str, dict]] = {}


class InMemoryWorkload(spec.Workload):
    """Splits are dicts of tensors with equal first dimension ('inputs', 'targets', optional 'weights')."""

    output_param_prefixes: tuple[str, ...] = ()
    # Subclasses also set target_metric_name and loss_type as class attributes; losses are targets from below.
    lower_is_better = False

    def __init__(self):
        super().__init__()
        self._splits: dict[str, dict] | None = None

    # --- what a workload provides ----------------------------------------------------------------------------
    def load_splits(self, data_dir: str) -> dict[str, dict]:
        """'train', 'validation' and 'test' as dicts of CPU tensors."""
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def summarize(self, outputs: Iterable[tuple[dict, torch.Tensor]], num_examples: int) -> dict[str, float]:
        """Metrics from (batch, model output) pairs covering the first ``num_examples`` examples of a split."""
        raise NotImplementedError

    # --- targets --------------------------------------------------------------------------------------------
    def _reached(self, eval_result: dict, split: str, target: float) -> bool:
        """AlgoPerf's stopping rule: strict (common/targets.py says why it differs from scoring's)."""
        value = eval_result[f"{split}/{self.target_metric_name}"]
        return bool(targets.reached(value, target, self.lower_is_better, inclusive=False))

    def has_reached_validation_target(self, eval_result: dict) -> bool:
        return self._reached(eval_result, "validation", self.validation_target_value)

    def has_reached_test_target(self, eval_result: dict) -> bool:
        return self._reached(eval_result, "test", self.test_target_value)

    # --- data -----------------------------------------------------------------------------------------------
    def _data_key(self, data_dir: str) -> tuple:
        return (type(self).load_splits, data_dir, str(DEVICE))

    def split_arrays(self, split: str, data_dir: str) -> dict:
        if self._splits is None:
            # Splits are read-only, so every instance in the process shares one copy (trials, tests, sweeps).
            key = self._data_key(data_dir)
            if key not in _LOADED:
                _LOADED[key] = {k: self.to_device(v) for k, v in self.load_splits(data_dir).items()}
            self._splits = _LOADED[key]
        if split == "eval_train":
            return self.take(self._splits["train"], self.num_eval_train_examples)
        return self._splits[split]

    def check_data(self, data_dir: str, keep: bool = True) -> None:
        """Load the splits now (a missing dataset raises WorkloadError before a run writes anything). With
        ``keep=False`` (a campaign's coordinator, which never trains) they are dropped again once checked; the
        on-disk cache a first load builds stays."""
        self.split_arrays("train", data_dir)
        if not keep:
            self._splits = None
            _LOADED.pop(self._data_key(data_dir), None)

    @staticmethod
    def to_device(split: dict) -> dict:
        return {k: v.to(DEVICE) for k, v in split.items()}

    @staticmethod
    def take(split: dict, n: int) -> dict:
        return {k: v[:n] for k, v in split.items()}

    def num_examples_in(self, split: dict) -> int:
        return len(split["targets"])

    def make_batch(self, split: dict, index: torch.Tensor) -> dict:
        return {k: v.index_select(0, index) for k, v in split.items()}

    def _build_input_queue(
        self, data_rng, split, data_dir, global_batch_size, cache=None, repeat_final_dataset=None, num_batches=None
    ) -> Iterator[dict]:
        del cache, repeat_final_dataset
        data = self.split_arrays(split, data_dir)
        n = self.num_examples_in(data)
        if split == "train":  # every rank draws the global batches and keeps its slice of each
            mine = ddp.local_slice(global_batch_size)
            batches = (i[mine] for i in arrays.train_indices(n, global_batch_size, arrays.seed_from_rng(data_rng)))
        else:
            batches = arrays.eval_indices(n, global_batch_size, n)
        for i, index in enumerate(batches):
            if num_batches is not None and i >= num_batches:
                return
            yield self.make_batch(data, index.to(DEVICE))

    # --- model ----------------------------------------------------------------------------------------------
    def init_model_fn(self, rng) -> spec.ModelInitState:
        model = seeded_model(rng, self.build_model)
        self._param_shapes = {n: spec.ShapeTuple(tuple(p.shape)) for n, p in model.named_parameters()}
        self._param_types = param_types(model)
        return ddp.wrap(model.to(DEVICE)), None

    def is_output_params(self, param_key: str) -> bool:
        return param_key.startswith(self.output_param_prefixes)

    def model_fn(
        self,
        params,
        augmented_and_preprocessed_input_batch,
        model_state,
        mode,
        rng,
        update_batch_norm,
        dropout_rate=0.0,
    ):
        del rng
        train = mode == spec.ForwardPassMode.TRAIN
        model = params if train else ddp.unwrap(params)  # workloads/ddp.py: why evals skip the DDP wrapper
        model.train(train)
        if train:
            set_batch_norm_update(model, update_batch_norm)
        with torch.set_grad_enabled(train and torch.is_grad_enabled()):
            out = model(augmented_and_preprocessed_input_batch["inputs"], dropout_rate=dropout_rate or 0.0)
        return out, model_state

    # --- evaluation -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def _eval_model_on_split(
        self, split, num_examples, global_batch_size, params, model_state, rng, data_dir, global_step=0
    ) -> dict[str, float]:
        del global_step
        data = self.split_arrays(split, data_dir)
        num_examples = min(num_examples, self.num_examples_in(data))

        def outputs():
            for index in ddp.mine(arrays.eval_indices(self.num_examples_in(data), global_batch_size, num_examples)):
                batch = self.make_batch(data, index.to(DEVICE))
                logits, _ = self.model_fn(
                    params, batch, model_state, spec.ForwardPassMode.EVAL, rng, update_batch_norm=False
                )
                yield batch, logits

        if ddp.active():  # summaries read targets (and weights), never the inputs: those stay on their rank
            pairs = ddp.gather_in_order([({k: v for k, v in b.items() if k != "inputs"}, o) for b, o in outputs()])
        else:
            pairs = outputs()
        return self.summarize(pairs, num_examples)
