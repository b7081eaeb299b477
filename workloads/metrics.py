"""Evaluation metrics as pure functions: average precision (ogbg's mAP), SSIM (fastmri's), and greedy CTC
decoding with word error rate (librispeech's)."""

import torch
import torch.nn.functional as F


def average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the precision-recall step curve, sum_k (R_k - R_{k-1}) P_k over distinct score thresholds
    (scikit-learn's ``average_precision_score``); NaN when there are no positives."""
    order = torch.argsort(scores, descending=True, stable=True)
    s, y = scores[order].double(), labels[order].double()
    positives = y.sum()
    if positives == 0:
        return float("nan")
    # The last index of each run of equal scores closes one threshold.
    last = torch.cat([s[1:] != s[:-1], torch.tensor([True], device=s.device)])
    tp = torch.cumsum(y, 0)[last]
    predicted = (torch.arange(len(y), device=s.device) + 1.0)[last]
    recall_steps = torch.diff(tp, prepend=tp.new_zeros(1)) / positives
    return float((recall_steps * tp / predicted).sum())


def mean_average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over tasks (columns) of their average precision, skipping tasks without positives or negatives."""
    values = []
    for task in range(labels.shape[1]):
        y = labels[:, task]
        if 0 < y.sum() < len(y):
            values.append(average_precision(scores[:, task], y))
    return sum(values) / len(values) if values else float("nan")


def ssim(prediction: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Per-image structural similarity of (B, H, W) images with a ``window`` x ``window`` uniform filter,
    k1 = 0.01, k2 = 0.03 and sample covariances (as fastMRI's evaluation, which follows scikit-image), averaged
    over the valid (unpadded) windows. ``data_range`` is (B,), usually each target's maximum."""
    k1, k2 = 0.01, 0.03
    x, y = prediction[:, None].double(), target[:, None].double()
    n = window * window
    mean = lambda t: F.avg_pool2d(t, window, stride=1)  # noqa: E731
    ux, uy = mean(x), mean(y)
    cov = n / (n - 1)
    vx, vy, vxy = cov * (mean(x * x) - ux * ux), cov * (mean(y * y) - uy * uy), cov * (mean(x * y) - ux * uy)
    c1 = (k1 * data_range.double()[:, None, None, None]) ** 2
    c2 = (k2 * data_range.double()[:, None, None, None]) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3)).to(prediction.dtype)


def ctc_greedy_decode(logits: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path decoding of (batch, frames, symbols) logits: each frame's argmax, repeats merged, blanks
    dropped."""
    best = logits.argmax(-1)
    new = torch.ones_like(best, dtype=torch.bool)
    new[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = new & (best != blank)
    return [row[k].tolist() for row, k in zip(best, keep, strict=True)]


def edit_distance(hypothesis: list, reference: list) -> int:
    """Levenshtein distance (substitutions, insertions and deletions each cost 1)."""
    previous = list(range(len(reference) + 1))
    for i, h in enumerate(hypothesis, 1):
        current = [i]
        for j, r in enumerate(reference, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (h != r)))
        previous = current
    return previous[-1]


def word_error_rate(hypotheses: list[str], references: list[str]) -> float:
    """Corpus WER: word edit distances summed over utterances, divided by the references' word count."""
    errors = sum(edit_distance(h.split(), r.split()) for h, r in zip(hypotheses, references, strict=True))
    return errors / max(sum(len(r.split()) for r in references), 1)
