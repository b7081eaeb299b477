"""The framework-free half of every kronbench workload: splits held in memory, targets, the seeded input
pipeline, output-parameter lookup and evaluation over fixed leading subsets of each split.

``workloads.base`` (PyTorch) and ``workloads.base_jax`` (JAX) complete it with the model and the arrays' home;
both draw the same batches (``workloads.arrays``) from the same splits. Imports neither torch nor jax.
"""

from collections.abc import Iterable, Iterator

from algoperf import spec
from common import targets
from workloads import arrays

SPLITS = ("train", "validation", "test")
_LOADED: dict[tuple, dict[str, dict]] = {}


class InMemoryCore(spec.Workload):
    """Splits are dicts of arrays with equal first dimension ('inputs', 'targets', optional 'weights')."""

    # Names as PyTorch's named_parameters() spells them; the JAX workloads map them onto flax paths.
    output_param_prefixes: tuple[str, ...] = ()
    # Subclasses also set target_metric_name and loss_type as class attributes; losses are targets from below.
    lower_is_better = False

    def __init__(self):
        super().__init__()
        self._splits: dict[str, dict] | None = None
        self.train_batch_size: int | None = None  # the training queue's, once built

    # --- what a framework base provides ---------------------------------------------------------------------
    def load_splits(self, data_dir: str) -> dict[str, dict]:
        """'train', 'validation' and 'test' as dicts of the framework's host arrays."""
        raise NotImplementedError

    def _data_key(self, data_dir: str) -> tuple:
        """What identifies one loaded copy of the splits (shared by every instance in the process)."""
        raise NotImplementedError

    def to_device(self, split: dict) -> dict:
        return split

    def as_index(self, index):
        """A numpy index array from ``workloads.arrays`` in the form ``make_batch`` takes."""
        return index

    def place(self, batch: dict) -> dict:
        """Where a finished batch goes before the model sees it (JAX: sharded along the batch dimension)."""
        return batch

    def eval_logits(self, params, batch: dict, model_state, rng):
        logits, _ = self.model_fn(params, batch, model_state, spec.ForwardPassMode.EVAL, rng, update_batch_norm=False)
        return logits

    # --- what a workload provides ----------------------------------------------------------------------------
    def make_batch(self, split: dict, index) -> dict:
        raise NotImplementedError

    def summarize(self, outputs: Iterable[tuple[dict, object]], num_examples: int) -> dict[str, float]:
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
    def take(split: dict, n: int) -> dict:
        return {k: v[:n] for k, v in split.items()}

    def num_examples_in(self, split: dict) -> int:
        return len(split["targets"])

    def train_index_stream(self, n: int, global_batch_size: int, data_rng) -> Iterator:
        """The index arrays of this process's training batches (PyTorch under torchrun: its slice of each)."""
        return arrays.train_indices(n, global_batch_size, arrays.seed_from_rng(data_rng))

    def _batches(self, data: dict, indices: Iterator, num_batches: int | None = None) -> Iterator[dict]:
        for i, index in enumerate(indices):
            if num_batches is not None and i >= num_batches:
                return
            yield self.place(self.make_batch(data, self.as_index(index)))

    def _build_input_queue(
        self, data_rng, split, data_dir, global_batch_size, cache=None, repeat_final_dataset=None, num_batches=None
    ) -> Iterator[dict]:
        """Loads the split now, not at the first batch: the runner builds the queue before its clock starts, and
        reading and normalising a dataset (seconds for mnist or fashion) is not the submission's time."""
        del cache, repeat_final_dataset
        data = self.split_arrays(split, data_dir)
        n = self.num_examples_in(data)
        if split == "train":
            self.train_batch_size = global_batch_size
            indices = self.train_index_stream(n, global_batch_size, data_rng)
        else:
            indices = arrays.eval_indices(n, global_batch_size, n)
        return self._batches(data, indices, num_batches)

    # --- model ----------------------------------------------------------------------------------------------
    def is_output_params(self, param_key: str) -> bool:
        return param_key.startswith(self.output_param_prefixes)

    # --- evaluation -----------------------------------------------------------------------------------------
    def _eval_model_on_split(
        self, split, num_examples, global_batch_size, params, model_state, rng, data_dir, global_step=0
    ) -> dict[str, float]:
        del global_step
        data = self.split_arrays(split, data_dir)
        num_examples = min(num_examples, self.num_examples_in(data))
        indices = arrays.eval_indices(self.num_examples_in(data), global_batch_size, num_examples)
        return self.summarize(self.eval_outputs(data, indices, params, model_state, rng), num_examples)

    def eval_outputs(self, data: dict, indices: Iterator, params, model_state, rng) -> Iterable[tuple[dict, object]]:
        """(batch, model output) pairs over the evaluation batches ``indices``, in order."""
        return ((batch, self.eval_logits(params, batch, model_state, rng)) for batch in self._batches(data, indices))
