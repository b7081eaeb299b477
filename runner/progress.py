"""A progress bar on submission time, quiet when stderr is not a terminal, and the one-line trial summary."""

import sys
import time

from tqdm import tqdm


class Progress:
    """Step, submission time / budget, last validation metric / target; redrawn at most every 0.5 s."""

    def __init__(self, desc: str, budget_sec: float, metric: str, target: float, enabled: bool | None = None):
        enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar = tqdm(
            total=round(budget_sec, 1),
            desc=desc,
            unit="s",
            disable=not enabled,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s {postfix}",
        )
        self._metric, self._target = metric, target
        self._last_value: float | None = None
        self._next_draw = 0.0

    def update(self, global_step: int, submission_time: float, force: bool = False) -> None:
        if self._bar.disable:
            return
        now = time.monotonic()
        if not force and now < self._next_draw:
            return
        self._next_draw = now + 0.5
        value = "-" if self._last_value is None else f"{self._last_value:.4g}"
        self._bar.n = min(round(submission_time, 1), self._bar.total)
        self._bar.set_postfix_str(f"step {global_step} | val {self._metric} {value} / {self._target:g}")

    def evaluated(self, global_step: int, submission_time: float, value: float | None) -> None:
        self._last_value = value
        self.update(global_step, submission_time, force=True)

    def close(self) -> None:
        self._bar.close()
