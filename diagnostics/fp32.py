"""``fp32-robustness``: what fp32 does to inverse roots, and to whole optimizers on an ill-conditioned quadratic.

Root micro-test (Mei et al. 2023): for SPD L with a given condition number, the fp32 inverse root L^(-1/4) by
eigendecomposition against the fp32 positive root X^(1/4) of X = L^(-1) (what inverse-free KrADagrad keeps),
both relative to the fp64 reference. Quadratic: f(W) = 0.5 tr(W^T H0 W H1) = 0.5 vec(W)^T (H0 kron H1) vec(W),
each factor's eigenvalues spread log-uniformly over [1/condition * 10, 10], full-batch steps, refresh every 3,
every optimizer at its best learning rate of a small grid, in fp32 and in fp64 (parameters and factors).
"""

import math
import os
from dataclasses import dataclass

import torch

import precond
from diagnostics.output import pyplot, write_csv
from precond.matrix_functions import positive_root

ROOT = 4


@dataclass(frozen=True)
class Fp32Config:
    conditions: tuple[float, ...] = (1e2, 1e4, 1e6, 1e8, 1e10)
    root_size: int = 64
    size: int = 64  # the quadratic's W is size x size
    factor_condition: float = 1e4  # each of H0, H1: eigenvalues over [10 / condition, 10]
    steps: int = 250
    frequency: int = 3
    seed: int = 0


QUICK = Fp32Config(root_size=32, size=16, steps=100)

LRS = (1e-3, 1e-2, 1e-1, 1.0)
SGD_LRS = (1e-3, 3e-3, 1e-2, 0.019)  # 0.019 is just inside SGD's stability edge 2 / (10 * 10)


def spd(n: int, condition: float, top: float, generator: torch.Generator) -> torch.Tensor:
    """Q diag(logspace(top / condition .. top)) Q^T in fp64."""
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    vals = torch.logspace(math.log10(top / condition), math.log10(top), n, dtype=torch.float64)
    return (q * vals) @ q.T


def root_errors(cfg: Fp32Config) -> list[dict]:
    rows = []
    generator = torch.Generator().manual_seed(cfg.seed)
    for condition in cfg.conditions:
        lmat = spd(cfg.root_size, condition, 1.0, generator)
        vals, vecs = torch.linalg.eigh(lmat)
        reference = (vecs * vals.pow(-1.0 / ROOT)) @ vecs.T
        vals32, vecs32 = torch.linalg.eigh(lmat.float())  # the direct fp32 route
        negative = int((vals32 <= 0).sum())
        direct = (vecs32 * vals32.pow(-1.0 / ROOT)) @ vecs32.T  # NaN where eigenvalues came out negative
        inverse_free = positive_root(torch.linalg.inv(lmat).float(), ROOT)
        for method, p, neg in (("direct_eigh", direct, negative), ("inverse_free", inverse_free, 0)):
            error = float(torch.linalg.norm(p.double() - reference) / torch.linalg.norm(reference))
            rows.append(
                {"condition": condition, "method": method, "relative_error": error, "negative_eigenvalues": neg}
            )
    return rows


def optimizers(frequency: int) -> dict:
    """name -> (factory(params, lr, dtype), learning rates). Kron variants refresh every ``frequency`` steps from
    step ``frequency``; KrADagrad is grafted as in the authors' code (ungrafted it does not beat SGD here)."""

    def kron(cls, **extra):
        def make(params, lr, dtype):
            factor_dtype = "float64" if dtype == torch.float64 else "float32"
            return cls(
                params,
                lr=lr,
                factor_dtype=factor_dtype,
                precondition_frequency=frequency,
                start_preconditioning_step=frequency,
                **extra,
            )

        return make

    return {
        "shampoo": (kron(precond.Shampoo), LRS),
        "kradagrad_star": (kron(precond.KrADagradStar), LRS),
        "kradagrad": (kron(precond.KrADagrad, grafting="adam", betas=(0.9, 0.999)), LRS),
        "eshampoo": (kron(precond.EShampoo, refresh_tau=0.0), LRS),
        "adam": (lambda params, lr, dtype: torch.optim.Adam(params, lr=lr), LRS),
        "sgd": (lambda params, lr, dtype: torch.optim.SGD(params, lr=lr), SGD_LRS),
    }


def quadratic_losses(cfg: Fp32Config) -> list[dict]:
    rows = []
    for dtype in (torch.float32, torch.float64):
        generator = torch.Generator().manual_seed(cfg.seed)
        h0 = spd(cfg.size, cfg.factor_condition, 10.0, generator).to(dtype)
        h1 = spd(cfg.size, cfg.factor_condition, 10.0, generator).to(dtype)
        w0 = torch.randn(cfg.size, cfg.size, generator=generator, dtype=torch.float64).to(dtype)

        loss = quadratic(h0, h1)
        initial = float(loss(w0))
        for name, (make, lrs) in optimizers(cfg.frequency).items():
            finals = {}
            for lr in lrs:
                w = torch.nn.Parameter(w0.clone())
                finals[lr] = _train(make([w], lr, dtype), w, loss, cfg.steps)
            best_lr = min(finals, key=finals.get)
            rows.append(
                {
                    "optimizer": name,
                    "dtype": str(dtype).replace("torch.", ""),
                    "size": cfg.size,
                    "best_lr": best_lr,
                    "relative_loss": finals[best_lr] / initial,
                    "diverged": not math.isfinite(finals[best_lr]),
                }
            )
    return rows


def quadratic(h0: torch.Tensor, h1: torch.Tensor):
    """f(W) = 0.5 tr(W^T H0 W H1)."""
    return lambda w: 0.5 * torch.trace(w.T @ h0 @ w @ h1)


def _train(opt, w, loss, steps: int) -> float:
    try:
        for _ in range(steps):
            opt.zero_grad()
            loss(w).backward()
            opt.step()
    except (FloatingPointError, RuntimeError):  # a diverged run: the optimizer's own report, or a failed root
        return math.inf
    final = float(loss(w).detach())
    return final if math.isfinite(final) else math.inf


def run(cfg: Fp32Config, output_dir: str) -> dict[str, str]:
    os.makedirs(output_dir, exist_ok=True)
    roots, quad = root_errors(cfg), quadratic_losses(cfg)
    paths = {name: os.path.join(output_dir, name) for name in ("fp32_roots.csv", "fp32_quadratic.csv", "fp32.png")}
    write_csv(paths["fp32_roots.csv"], roots)
    write_csv(paths["fp32_quadratic.csv"], quad)
    _plot(roots, quad, paths["fp32.png"])
    return paths


def _plot(roots: list[dict], quad: list[dict], path: str) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in ("direct_eigh", "inverse_free"):
        pts = [(r["condition"], r["relative_error"]) for r in roots if r["method"] == method]
        xs, ys = zip(*pts, strict=True)
        label = "fp32 L^(-1/4) by eigh" if method == "direct_eigh" else "fp32 X^(1/4), X = L^(-1)"
        left.plot(xs, [y if math.isfinite(y) else float("nan") for y in ys], marker="o", label=label)
    left.set(xscale="log", yscale="log", xlabel="condition number of L", ylabel="relative error vs fp64")
    left.set_title("inverse 4th root in fp32 (missing: negative eigenvalues)")
    names = list(dict.fromkeys(r["optimizer"] for r in quad))
    for offset, dtype in ((-0.2, "float32"), (0.2, "float64")):
        values = [next(r["relative_loss"] for r in quad if r["optimizer"] == n and r["dtype"] == dtype) for n in names]
        right.bar(
            [i + offset for i in range(len(names))], [v if math.isfinite(v) else 1.0 for v in values], 0.4, label=dtype
        )
    right.set_xticks(range(len(names)), names, rotation=20)
    right.set(yscale="log", ylabel="final / initial loss (best lr)")
    right.set_title("ill-conditioned quadratic")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
