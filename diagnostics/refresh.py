"""``refresh-stats``: how the adaptive refresh criterion (Eschenhagen et al. 2025) trades eigenbasis refreshes for
time to target, for EShampoo and SOAP on MNIST.

An MLP (784 -> 128 -> 128 -> 10, ReLU) trains with each variant and each tau, refreshes checked every
``frequency`` steps. Time to target is the training time (forward, backward, step; evaluation untimed) until the
validation accuracy, measured every ``eval_every`` steps, reaches ``target``. Per factor (block shape and factor
index), the eigenbasis refreshes done against the checks made.
"""

import math
import os
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import precond
from diagnostics.output import pyplot, write_csv

VARIANTS = {"eshampoo": precond.EShampoo, "soap": precond.SOAP}


@dataclass(frozen=True)
class RefreshConfig:
    taus: tuple[float, ...] = (0.0, 0.01, 0.1, 0.3)
    frequency: int = 10
    target: float = 0.97
    max_steps: int = 4000
    eval_every: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0


QUICK = RefreshConfig(target=0.93, max_steps=600, eval_every=50)


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))


def train(cls, tau: float, cfg: RefreshConfig, data: dict) -> dict:
    """One run: steps and seconds to target (inf if not reached) and the optimizer's refresh counts."""
    torch.manual_seed(cfg.seed)
    model = mlp()
    opt = cls(
        model.parameters(),
        lr=cfg.lr,
        refresh_tau=tau,
        precondition_frequency=cfg.frequency,
        start_preconditioning_step=cfg.frequency,
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    seconds, hit = 0.0, None
    for step in range(1, cfg.max_steps + 1):
        index = torch.randint(len(data["train_y"]), (cfg.batch_size,), generator=generator)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(data["train_x"][index]), data["train_y"][index]).backward()
        opt.step()
        seconds += time.perf_counter() - start
        if step % cfg.eval_every == 0:
            with torch.no_grad():
                accuracy = (model(data["valid_x"]).argmax(-1) == data["valid_y"]).float().mean().item()
            if accuracy >= cfg.target:
                hit = (step, seconds)
                break
    checks = sum(opt.config.refresh_due(t) for t in range(1, step + 1))  # refresh opportunities per block
    return {
        "steps_to_target": hit[0] if hit else math.inf,
        "time_to_target": hit[1] if hit else math.inf,
        "steps_run": step,
        "checks": checks,
        "factors": opt.refresh_counts(),
    }


def run(cfg: RefreshConfig, train_x: torch.Tensor, train_y: torch.Tensor, output_dir: str) -> dict[str, str]:
    data = {
        "train_x": train_x[:-10000].float() / 255.0,
        "train_y": train_y[:-10000],
        "valid_x": train_x[-10000:].float() / 255.0,  # held out from the training split
        "valid_y": train_y[-10000:],
    }
    rows = []
    for name, cls in VARIANTS.items():
        for tau in cfg.taus:
            r = train(cls, tau, cfg, data)
            for f in r["factors"]:
                rows.append(
                    {
                        "variant": name,
                        "tau": tau,
                        "factor": f"{'x'.join(map(str, f['block_shape']))}/{f['factor']}",
                        "blocks": len(f["counts"]),
                        "refreshes": sum(f["counts"]),
                        "checks": r["checks"] * len(f["counts"]),
                        "steps_to_target": r["steps_to_target"],
                        "time_to_target": r["time_to_target"],
                    }
                )
    os.makedirs(output_dir, exist_ok=True)
    paths = {n: os.path.join(output_dir, n) for n in ("refresh_stats.csv", "refresh_stats.png")}
    write_csv(paths["refresh_stats.csv"], rows)
    _plot(rows, cfg, paths["refresh_stats.png"])
    return paths


def _plot(rows: list[dict], cfg: RefreshConfig, path: str) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for k, name in enumerate(VARIANTS):
        share = []
        times = []
        for tau in cfg.taus:
            sel = [r for r in rows if r["variant"] == name and r["tau"] == tau]
            share.append(sum(r["refreshes"] for r in sel) / max(1, sum(r["checks"] for r in sel)))
            times.append(sel[0]["time_to_target"] if sel else math.inf)
        xs = range(len(cfg.taus))
        left.plot(xs, share, marker="o", label=name, color=f"C{k}")
        right.plot(xs, [t if math.isfinite(t) else float("nan") for t in times], marker="o", label=name, color=f"C{k}")
    for ax in (left, right):
        ax.set_xticks(range(len(cfg.taus)), [f"{t:g}" for t in cfg.taus])
        ax.set_xlabel("refresh criterion tau")
        ax.grid(alpha=0.3)
        ax.legend()
    left.set(ylabel="refreshes / checks (all factors)", title="eigenbasis refreshes done")
    right.set(ylabel="training seconds to target", title=f"time to validation accuracy {cfg.target:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
