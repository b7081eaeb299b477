"""A tuning campaign: plan it, skip what a previous run finished, hand the rest to an executor, record each end."""

import logging
import os
from dataclasses import dataclass

from tqdm import tqdm

from common import checks
from common.errors import UsageError
from common.locks import LockBusy, exclusive_dir
from tuning.manifest import Manifest
from tuning.plan import CampaignConfig, TrialSpec, plan

log = logging.getLogger("kronbench.tuning")

LOCK = ".campaign.lock"  # names the coordinator holding the campaign (a flock on the campaign folder)
LOG_DIR = "logs"


@dataclass(frozen=True)
class CampaignSummary:
    root: str
    total: int
    done: int
    ran: int  # trials this run finished
    failures: tuple[tuple[str, str], ...]  # (trial id, error) of this run

    def line(self) -> str:
        text = f"campaign {self.root}: {self.done}/{self.total} trials finished ({self.ran} in this run)"
        if self.done == self.total:
            text += f"; score it with python -m scoring --submission_directory={self.root}"
        if self.failures:
            trial_id, error = self.failures[0]
            text += f"; {len(self.failures)} failed, first {trial_id}: {error}. Re-run the same command to retry them"
        return text


def run_campaign(cfg: CampaignConfig, executor, progress: bool | None = None, preflight=None) -> CampaignSummary:
    """Run every unfinished trial of ``cfg`` with ``executor``; safe to repeat after a crash or a kill.

    ``preflight(workload_name)`` (e.g. loading its data) runs once per workload before anything is written, so a
    missing dataset stops the campaign with one line instead of failing every trial.
    """
    specs = plan(cfg)
    if preflight is not None:
        for workload in dict.fromkeys(s.config.workload_name for s in specs):
            preflight(workload)
    for folder in (cfg.root, log_dir(cfg), *(s.trial_dir for s in specs)):  # never through a link
        checks.no_links(cfg.experiment_dir, folder)
    checks.make_dirs("experiment_dir", cfg.root)
    try:
        with exclusive_dir(cfg.root, LOCK):
            return _run_locked(cfg, specs, executor, progress)
    except LockBusy as e:
        raise UsageError(
            f"campaign {cfg.root} is already running ({e.holder}); wait for it or stop it, then re-run"
        ) from None


def _run_locked(cfg, specs: list[TrialSpec], executor, progress) -> CampaignSummary:
    manifest = Manifest.open(cfg.root, cfg.identity(), specs)
    todo = [s for s in specs if not manifest.is_done(s.id)]
    bar = tqdm(
        total=len(specs),
        initial=len(specs) - len(todo),
        desc=f"campaign {cfg.experiment_name}",
        unit="trial",
        disable=None if progress is None else not progress,  # None: only on a terminal
    )
    failures, ran = [], 0
    try:
        for outcome in executor.run(todo, on_start=lambda spec: manifest.started(spec.id)):
            if outcome.result is not None:
                manifest.finished(outcome.spec.id, outcome.result)
                ran += 1
                bar.write(outcome.result["summary"])
            else:
                manifest.failed(outcome.spec.id, outcome.error or "unknown error")
                failures.append((outcome.spec.id, outcome.error or "unknown error"))
                bar.write(f"{outcome.spec.id}: FAILED: {outcome.error}")
            bar.update(1)
            bar.set_postfix_str(f"{len(failures)} failed" if failures else "")
    finally:
        bar.close()
    return CampaignSummary(cfg.root, len(specs), manifest.count("done"), ran, tuple(failures))


def log_dir(cfg: CampaignConfig) -> str:
    return os.path.join(cfg.root, LOG_DIR)
