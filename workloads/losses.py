"""AlgoPerf ``loss_fn`` bodies: summed (masked) loss, the number of valid examples, per-example losses."""

import torch
import torch.nn.functional as F


def reduce_masked(per_example: torch.Tensor, mask_batch) -> dict:
    """``mask_batch`` has the shape of ``per_example`` (or broadcasts to it and counts the same)."""
    if mask_batch is not None:
        per_example = per_example * mask_batch
        n_valid = mask_batch.sum()
    else:
        n_valid = torch.tensor(per_example.numel(), device=per_example.device)
    return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}


def softmax_cross_entropy(label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
    """Integer labels, class logits on dimension 1 (any trailing dimensions are more examples)."""
    per_example = F.cross_entropy(logits_batch, label_batch, reduction="none", label_smoothing=label_smoothing)
    return reduce_masked(per_example, mask_batch)


def sigmoid_cross_entropy(label_batch, logits_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
    """Binary labels (0/1, any shape matching the logits); smoothing pulls them towards 1/2, as AlgoPerf's."""
    labels = label_batch.to(logits_batch.dtype)
    if label_smoothing:
        labels = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
    per_element = F.binary_cross_entropy_with_logits(logits_batch, labels, reduction="none")
    return reduce_masked(per_element, mask_batch)


def mean_absolute_error(label_batch, outputs_batch, mask_batch=None, label_smoothing: float = 0.0) -> dict:
    """Per-example mean |output - label| over all but the first dimension (AlgoPerf's fastmri loss)."""
    del label_smoothing
    per_example = (outputs_batch - label_batch).abs().flatten(1).mean(dim=1)
    return reduce_masked(per_example, mask_batch)
