"""Losses and metrics of the suite against hand computations and closed forms."""

import math

import pytest
import torch

from workloads import losses, metrics


def test_softmax_cross_entropy_per_token_by_hand():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]]).transpose(1, 2)  # one sequence, two tokens, two classes
    labels = torch.tensor([[0, 1]])
    out = losses.softmax_cross_entropy(labels, logits)
    expected = [math.log(1 + math.exp(-2.0)), math.log(2.0)]
    assert out["per_example"][0].tolist() == pytest.approx(expected)
    assert out["n_valid_examples"].item() == 2 and out["summed"].item() == pytest.approx(sum(expected))


def test_sigmoid_cross_entropy_with_smoothing_and_mask_by_hand():
    logits, labels = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([1.0, 0.0, 1.0])
    out = losses.sigmoid_cross_entropy(labels, logits, mask_batch=torch.tensor([1.0, 1.0, 0.0]), label_smoothing=0.2)
    # smoothed labels 0.9, 0.1: loss = -(y log s(z) + (1 - y) log(1 - s(z)))
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    first = -math.log(0.5)
    second = -(0.1 * math.log(sig(2.0)) + 0.9 * math.log(1 - sig(2.0)))
    assert out["per_example"].tolist() == pytest.approx([first, second, 0.0])
    assert out["n_valid_examples"].item() == 2 and out["summed"].item() == pytest.approx(first + second)


def test_mean_absolute_error_by_hand():
    out = losses.mean_absolute_error(torch.zeros(2, 2, 2), torch.tensor([[[1.0, -1.0], [2.0, 0.0]], [[0.0] * 2] * 2]))
    assert out["per_example"].tolist() == [1.0, 0.0] and out["n_valid_examples"].item() == 2


def test_average_precision_by_hand_with_ties():
    # Scores 0.9 (pos), 0.8 (neg), 0.8 (pos), 0.1 (pos): thresholds 0.9 -> P 1, R 1/3; 0.8 -> P 2/3, R 2/3;
    # 0.1 -> P 3/4, R 1. AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/4.
    ap = metrics.average_precision(torch.tensor([0.9, 0.8, 0.8, 0.1]), torch.tensor([1, 0, 1, 1]))
    assert ap == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert metrics.average_precision(torch.tensor([0.2, 0.1]), torch.tensor([0, 0])) != metrics.average_precision(
        torch.tensor([0.2, 0.1]), torch.tensor([0, 0])
    )  # NaN without positives


def test_mean_average_precision_skips_single_class_tasks():
    scores = torch.tensor([[0.9, 0.5, 0.3], [0.1, 0.4, 0.2]])
    labels = torch.tensor([[1, 1, 0], [0, 1, 0]])  # task 1 all positive, task 2 all negative: skipped
    assert metrics.mean_average_precision(scores, labels) == pytest.approx(1.0)
    labels = torch.tensor([[0, 1, 0], [1, 1, 0]])
    assert metrics.mean_average_precision(scores, labels) == pytest.approx(0.5)


def test_ssim_closed_forms():
    torch.manual_seed(0)
    x = torch.rand(2, 16, 16)
    ones = torch.ones(2)
    assert metrics.ssim(x, x, ones).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    # Constant images a and b: SSIM = (2ab + c1) / (a^2 + b^2 + c1) in every window (variances are zero).
    a, b = 0.2, 0.6
    c1 = (0.01 * 1.0) ** 2
    got = metrics.ssim(torch.full((1, 8, 8), a), torch.full((1, 8, 8), b), torch.ones(1)).item()
    assert got == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-5)
    # A negated pattern around the same mean has negative structure correlation.
    assert metrics.ssim(0.5 - (x - 0.5), x, ones).max().item() < 0
