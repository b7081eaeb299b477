"""Shared pieces of softmax-classification workloads: loss, evaluation and the accuracy target."""

import torch
import torch.nn.functional as F

from algoperf import spec
from workloads import arrays


def softmax_cross_entropy(label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
    """AlgoPerf's loss_fn contract: summed (masked) loss, number of valid examples, per-example losses."""
    per_example = F.cross_entropy(logits_batch, label_batch, reduction="none", label_smoothing=label_smoothing)
    if mask_batch is not None:
        per_example = per_example * mask_batch
        n_valid = mask_batch.sum()
    else:
        n_valid = torch.tensor(len(per_example), device=per_example.device)
    return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}


class ClassificationWorkload(spec.Workload):
    """Accuracy-targeted classification over in-memory splits; subclasses provide data and model."""

    @property
    def target_metric_name(self) -> str:
        return "accuracy"

    @property
    def loss_type(self) -> spec.LossType:
        return spec.LossType.SOFTMAX_CROSS_ENTROPY

    def has_reached_validation_target(self, eval_result: dict) -> bool:
        return eval_result["validation/accuracy"] > self.validation_target_value

    def has_reached_test_target(self, eval_result: dict) -> bool:
        return eval_result["test/accuracy"] > self.test_target_value

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
        return softmax_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)

    def split_arrays(self, split: str, data_dir: str) -> dict[str, torch.Tensor]:
        """Tensors for 'train', 'eval_train', 'validation' or 'test' with keys 'inputs' and 'targets'."""
        raise NotImplementedError

    def _build_input_queue(
        self, data_rng, split, data_dir, global_batch_size, cache=None, repeat_final_dataset=None, num_batches=None
    ):
        del cache, repeat_final_dataset, num_batches
        data = self.split_arrays(split, data_dir)
        if split == "train":
            return arrays.train_batches(data, global_batch_size, arrays.seed_from_rng(data_rng))
        return arrays.eval_batches(data, global_batch_size, len(data["targets"]))

    @torch.no_grad()
    def _eval_model_on_split(
        self, split, num_examples, global_batch_size, params, model_state, rng, data_dir, global_step=0
    ) -> dict[str, float]:
        del global_step
        data = self.split_arrays(split, data_dir)
        correct, loss = 0.0, 0.0
        for batch in arrays.eval_batches(data, global_batch_size, num_examples):
            logits, _ = self.model_fn(
                params, batch, model_state, spec.ForwardPassMode.EVAL, rng, update_batch_norm=False, dropout_rate=0.0
            )
            correct += (logits.argmax(dim=-1) == batch["targets"]).sum().item()
            loss += self.loss_fn(batch["targets"], logits)["summed"].item()
        return {"accuracy": correct / num_examples, "loss": loss / num_examples}
