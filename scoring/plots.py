"""Performance profiles and training curves (matplotlib, no display needed)."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from scoring import scores  # noqa: E402
from scoring.compare import Comparison  # noqa: E402


def _colors(submissions: list[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {s: cycle[i % len(cycle)] for i, s in enumerate(submissions)}


def performance_profiles(c: Comparison):
    """rho(tau) per submission, its score in the legend. Returns the figure (``save`` writes and closes it)."""
    colors = _colors(c.submissions)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s in c.submissions:
        ax.step(scores.TAUS, c.profiles[s], where="post", color=colors[s], label=f"{s} (score {c.scores[s]:.3f})")
    ax.set_xlabel("tau (time to target / best time to target)")
    ax.set_ylabel("fraction of workloads within tau")
    ax.set_xlim(1.0, scores.MAX_TAU)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Performance profiles over {len(c.workloads)} workload(s)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def training_curves(c: Comparison, workload: str):
    """Validation metric against submission time: per submission, the chosen trial of its median study (or, if no
    study reached the target, the trial with the best final value); the target as a dashed line."""
    target = c.targets[workload]
    colors = _colors(c.submissions)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s in c.submissions:
        trial = representative_trial(c, s, workload)
        if trial is None:
            continue
        ax.plot(trial.log.times, trial.log.metrics.get(target.column), color=colors[s], label=_label(s, trial))
    ax.axhline(target.value, color="black", linestyle="--", linewidth=1, label=f"target {target.value:g}")
    ax.set_xlabel("submission time (s)")
    ax.set_ylabel(target.column)
    better = "lower" if target.lower_is_better else "higher"
    ax.set_title(f"{workload}: validation {target.metric} ({better} is better)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def save(fig, path: str) -> None:
    fig.savefig(path, dpi=120)
    plt.close(fig)


def representative_trial(c: Comparison, submission: str, workload: str):
    rows = [t for t in c.trials if t.log.submission == submission and t.log.workload == workload]
    chosen = sorted((t for t in rows if t.chosen), key=lambda t: (t.hit.time, t.log.study))
    if chosen:
        return chosen[(len(chosen) - 1) // 2]  # the median study (the lower middle for an even count)
    target = c.targets[workload]
    sign = -1.0 if target.lower_is_better else 1.0

    def final(t) -> float:
        values = t.log.metrics.get(target.column)
        v = values[-1] if values is not None and len(values) else math.nan
        return sign * v if math.isfinite(v) else -math.inf

    return max(rows, key=final, default=None)


def _label(submission: str, trial) -> str:
    where = f"study {trial.log.study}, trial {trial.log.trial}"
    if trial.hit.reached:
        return f"{submission} ({where}; target at {trial.hit.time:.1f} s)"
    return f"{submission} ({where}; not reached)"
