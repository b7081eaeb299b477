"""``kron-quality``: Kronecker approximation quality on the small layers of small networks trained on MNIST.

Two networks on average-pooled MNIST: softmax regression on 5x5 pixels (one 10 x 25 layer) and a tanh MLP on
7x7 pixels (49 -> 16 -> 16 -> 10; the 16 x 49 layer is too large for an exact H and is skipped). Both train with
Adam; every ``every`` steps, on a fixed set of training examples, per-example gradients of each small layer give
the exact H for two targets: ``adagrad`` (real labels: the gradient covariance Adagrad and Shampoo accumulate) and
``gauss_newton`` (labels sampled from the model: for softmax cross-entropy, the Gauss-Newton matrix in expectation).
At the last step, factors are also estimated from batch-mean gradients over batches of several sizes.
"""

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from diagnostics.hooks import per_example_linear_grads
from diagnostics.kron import approximation_cosines
from diagnostics.output import pyplot, write_csv

METHODS = ("opt_kron", "shampoo2", "shampoo")
TARGETS = {"adagrad": "real", "gauss_newton": "sampled"}  # target -> labels


@dataclass(frozen=True)
class KronQualityConfig:
    steps: int = 1000
    every: int = 100
    examples: int = 2048  # per-example gradients per measurement
    batch_size: int = 128  # training
    batch_sizes: tuple[int, ...] = (1, 4, 16, 64)  # the batch-mean study, at the last step
    batch_pool: int = 32768  # its examples: pool / size batch means per size, so factors are not starved
    max_layer_size: int = 256
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if not (self.steps >= 1 and self.every >= 1 and self.batch_pool >= max(self.batch_sizes) * 64):
            raise ValueError("need steps >= 1, every >= 1 and at least 64 batches of the largest batch size")


QUICK = KronQualityConfig(steps=200, every=100, examples=1024, batch_pool=8192)


def networks() -> dict[str, tuple[int, nn.Sequential]]:
    """name -> (pooled image side, model)."""
    return {
        "softmax_regression": (5, nn.Sequential(nn.Linear(25, 10))),
        "mlp": (7, nn.Sequential(nn.Linear(49, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 10))),
    }


def pooled(images: torch.Tensor, side: int) -> torch.Tensor:
    """(N, 784) uint8 -> (N, side*side) floats in [0, 1], by adaptive average pooling."""
    x = images.float().div(255.0).reshape(-1, 1, 28, 28)
    return F.adaptive_avg_pool2d(x, side).flatten(1)


def per_example_grads(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, layers: list[int]) -> dict:
    """Per-example weight gradients {layer index: (N, out, in)} of the cross-entropy, for ``model[i]``."""
    grads = per_example_linear_grads(
        {str(i): model[i] for i in layers}, lambda: F.cross_entropy(model(x), y, reduction="none")
    )
    return {int(name): g for name, g in grads.items()}


def sampled_labels(model: nn.Module, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    with torch.no_grad():
        return torch.multinomial(F.softmax(model(x), dim=-1), 1, generator=generator).squeeze(1)


def run(cfg: KronQualityConfig, train_x: torch.Tensor, train_y: torch.Tensor, output_dir: str) -> dict[str, str]:
    """Train both networks, measure, write ``kron_quality.csv``, ``kron_batch.csv`` and the PNG; return paths."""
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    rows, batch_rows = [], []
    order = torch.randperm(len(train_y), generator=generator)
    probe, pool = order[: cfg.examples], order[: cfg.batch_pool]
    for name, (side, model) in networks().items():
        x_all = pooled(train_x, side)
        x_probe, y_probe = x_all[probe], train_y[probe]
        x_pool, y_pool = x_all[pool], train_y[pool]
        layers = [i for i, m in enumerate(model) if isinstance(m, nn.Linear) and m.weight.numel() <= cfg.max_layer_size]
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        for step in range(cfg.steps + 1):
            if step % cfg.every == 0 or step == cfg.steps:
                for target, labels in TARGETS.items():
                    y = y_probe if labels == "real" else sampled_labels(model, x_probe, generator)
                    for i, g in per_example_grads(model, x_probe, y, layers).items():
                        for method, c in approximation_cosines(g).items():
                            rows.append(dict(layer=f"{name}.{i}", step=step, target=target, method=method, cosine=c))
            if step == cfg.steps:
                for labels in TARGETS.values():
                    y = y_pool if labels == "real" else sampled_labels(model, x_pool, generator)
                    for i, g in per_example_grads(model, x_pool, y, layers).items():
                        batch_rows += _batch_study(f"{name}.{i}", labels, g, cfg.batch_sizes)
                break
            index = torch.randint(len(train_y), (cfg.batch_size,), generator=generator)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x_all[index]), train_y[index]).backward()
            opt.step()
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        "kron_quality.csv": os.path.join(output_dir, "kron_quality.csv"),
        "kron_batch.csv": os.path.join(output_dir, "kron_batch.csv"),
        "kron_quality.png": os.path.join(output_dir, "kron_quality.png"),
    }
    write_csv(paths["kron_quality.csv"], rows, ["layer", "step", "target", "method", "cosine"])
    write_csv(paths["kron_batch.csv"], batch_rows, ["layer", "labels", "batch_size", "method", "cosine"])
    _plot(rows, batch_rows, paths["kron_quality.png"])
    return paths


def _batch_study(layer: str, labels: str, grads: torch.Tensor, sizes) -> list[dict]:
    """Factors from batch-mean gradients (consecutive groups of ``size``) against the per-example H."""
    out = []
    for size in sizes:
        n = grads.shape[0] // size * size
        means = grads[:n].reshape(n // size, size, *grads.shape[1:]).mean(dim=1)
        for method, c in approximation_cosines(grads, factor_grads=means).items():
            out.append({"layer": layer, "labels": labels, "batch_size": size, "method": method, "cosine": c})
    return out


def _plot(rows: list[dict], batch_rows: list[dict], path: str) -> None:
    plt = pyplot()
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig, axes = plt.subplots(2, len(layers), figsize=(4.2 * len(layers), 7.2), squeeze=False)
    styles = {"adagrad": "-", "gauss_newton": "--", "real": "-", "sampled": "--"}
    for col, layer in enumerate(layers):
        top, bottom = axes[0][col], axes[1][col]
        for method in METHODS:
            for target in TARGETS:
                pts = [
                    (r["step"], r["cosine"])
                    for r in rows
                    if (r["layer"], r["method"], r["target"]) == (layer, method, target)
                ]
                top.plot(
                    *zip(*pts, strict=True),
                    styles[target],
                    label=f"{method}, {target}",
                    color=f"C{METHODS.index(method)}",
                )
            for labels in ("real", "sampled"):
                pts = [
                    (r["batch_size"], r["cosine"])
                    for r in batch_rows
                    if (r["layer"], r["method"], r["labels"]) == (layer, method, labels)
                ]
                bottom.plot(
                    *zip(*pts, strict=True),
                    styles[labels],
                    marker="o",
                    label=f"{method}, {labels} labels",
                    color=f"C{METHODS.index(method)}",
                )
        top.set(title=layer, xlabel="training step", ylabel="cosine to exact H")
        bottom.set(xscale="log", xlabel="batch size of the gradients in the factors", ylabel="cosine to per-example H")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
