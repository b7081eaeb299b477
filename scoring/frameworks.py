"""Scoring across frameworks: which workload entries are scored, and the same algorithm's times per framework.

A workload that some submission logged under more than one framework (``mnist_pytorch/`` and ``mnist_jax/``
beside each other, as ``python -m tuning --framework=both`` writes them) is scored as one entry per framework,
named like its folders (``mnist_pytorch``, ``mnist_jax``). Each entry is a workload in AlgoPerf's sense: its own
target (``target_of(workload, framework)``), best trial per study, median over studies, 4x rule and column of the
performance profile, so submissions are ranked against the others on the same framework and a submission's two
implementations never share a median. A workload each submission logged under one framework keeps its plain
name, as AlgoPerf's leaderboard scores PyTorch and JAX submissions side by side on one workload.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace

from common import layout
from common.checks import FRAMEWORKS
from scoring.experiments import TrialLog

REFERENCE = FRAMEWORKS[0]  # ratios are other / reference: pytorch, the framework kronbench started from


@dataclass(frozen=True)
class Entries:
    """The scored workload entries: entry name -> (workload, framework), and which workloads are split."""

    sources: dict[str, tuple[str, str]] = field(default_factory=dict)  # unsplit: the framework of its first log
    split: frozenset[str] = frozenset()

    def name(self, workload: str, framework: str) -> str:
        return layout.workload_name(workload, framework) if workload in self.split else workload

    def workload(self, entry: str) -> str:
        """The registry's name of an entry's workload (``mnist`` for ``mnist_jax``)."""
        return self.sources[entry][0] if entry in self.sources else entry

    def base(self, entry: str, base_of) -> str:
        """The entry of an official variant's base workload in the same framework (``base_of`` maps names)."""
        if entry not in self.sources:
            return base_of(entry)
        workload, framework = self.sources[entry]
        return self.name(base_of(workload), framework)


def split_entries(logs: list[TrialLog]) -> tuple[list[TrialLog], Entries]:
    """The logs with ``workload`` renamed to their entry, and the entries."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for t in logs:
        seen[(t.submission, t.workload)].add(t.framework)
    naming = Entries(split=frozenset(w for (_, w), fs in seen.items() if len(fs) > 1))
    sources: dict[str, tuple[str, str]] = {}
    for t in logs:
        sources.setdefault(naming.name(t.workload, t.framework), (t.workload, t.framework))
    return [replace(t, workload=naming.name(t.workload, t.framework)) for t in logs], Entries(sources, naming.split)


@dataclass(frozen=True)
class FrameworkRow:
    """One submission on one workload in every framework: median time and steps to target over studies."""

    submission: str
    workload: str
    times: dict[str, float]  # framework -> seconds; inf if not reached
    steps: dict[str, float]  # framework -> steps; inf if not reached
    reached: dict[str, str]  # framework -> "studies reached/studies"

    def ratio(self, framework: str) -> float:
        """t_framework / t_reference; NaN unless both reached."""
        t, ref = self.times[framework], self.times[REFERENCE]
        return t / ref if math.isfinite(t) and math.isfinite(ref) else math.nan


def framework_rows(rows, entries: Entries) -> list[FrameworkRow]:
    """Per submission and split workload, its WorkloadRows (scoring.compare) side by side, where the submission
    has every framework of that workload."""
    by_key = {(r.submission, r.workload): r for r in rows}
    out = []
    for workload in sorted(entries.split):
        frameworks = [f for f in FRAMEWORKS if entries.name(workload, f) in entries.sources]
        for submission in sorted({r.submission for r in rows}):
            found = {f: by_key.get((submission, entries.name(workload, f))) for f in frameworks}
            if len(found) < 2 or None in found.values():
                continue
            out.append(
                FrameworkRow(
                    submission,
                    workload,
                    {f: r.time for f, r in found.items()},
                    {f: r.step for f, r in found.items()},
                    {f: f"{r.studies_reached}/{r.num_studies}" for f, r in found.items()},
                )
            )
    return out
