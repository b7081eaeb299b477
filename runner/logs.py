"""Trial logs in AlgoPerf's layout: JSON metadata, measurement CSVs and TensorBoard event files."""

import csv
import io
import logging
import os
import platform
import socket
import subprocess
import sys
import time
from typing import Any

import torch

from common import layout
from common.atomic import atomic_open
from common.errors import UsageError

log = logging.getLogger("kronbench.runner")


def meta_data(workload, workload_name: str, framework: str, rng_seed: int | None) -> dict[str, Any]:
    """What a reader needs to reproduce the trial: versions, machine, seed, workload."""
    meta = {
        "workload": workload_name,
        "workload_class": f"{type(workload).__module__}.{type(workload).__qualname__}",
        "framework": framework,
        "rng_seed": rng_seed,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "git_commit": _git_commit(),
        "start_time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if framework == "jax":
        import jax

        meta.update(jax=jax.__version__, jax_devices=[str(d) for d in jax.devices()])
    return meta


def _git_commit() -> str | None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


class _CsvTable:
    """Rows appended to a CSV. On open, rows logged after ``keep_through_step`` (the checkpoint a resumed trial
    continues from) and a line torn by a kill mid-write (the header included) are dropped by ``repair``, so a
    resumed trial never counts an eval twice. Any other line that is not a row of the table is refused rather
    than dropped or kept. Whole-file rewrites (a new column, dropped rows) are atomic."""

    def __init__(self, path: str, keep_through_step: int):
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = []
        self._dirty = False
        if not os.path.isfile(path):
            return
        way_out = "fix or remove the file, or pass --overwrite to start the trial over"
        try:
            with open(path, newline="", encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not UTF-8 text; {way_out}") from None
        complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]  # drop a torn last line
        reader = csv.DictReader(io.StringIO(complete))
        self.columns = list(reader.fieldnames or [])
        if self.columns and self.columns[:2] != ["global_step", "preemption_count"]:
            raise UsageError(f"{path} has no kronbench header (it starts {complete[:40]!r}); {way_out}")
        rows = list(reader)
        for row in rows:
            if None in row or None in row.values() or _step(row) is None:
                raise UsageError(f"{path} line {reader.line_num} is not a row of this table; {way_out}")
        self.rows = [r for r in rows if _step(r) <= keep_through_step]
        self._dirty = complete != text or len(self.rows) != len(rows)

    def rebuild(self, rows: list[dict[str, Any]]) -> list[int]:
        """Put back the ``rows`` (the checkpoint's record of its evals) whose steps the file lost, e.g. to a file
        emptied or cut inside its header; returns their steps. Rows the file kept stay as they are."""
        have = {_step(r) for r in self.rows}
        lost = [r for r in rows if r["global_step"] not in have]
        for row in lost:
            self.columns += [k for k in row if k not in self.columns]
        if lost:
            self.rows = sorted(self.rows + lost, key=_step)
            self._dirty = True
        return [r["global_step"] for r in lost]

    def repair(self) -> None:
        if self._dirty:
            self._rewrite()
            self._dirty = False

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new or not os.path.isfile(self.path):
            self.columns += new
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns).writerow(row)

    def _rewrite(self) -> None:
        with atomic_open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(self.rows)


def has_final_row(trial_dir: str, global_step: int) -> bool:
    """Whether measurements.csv holds a row of ``global_step``: a finished trial's last act (TrialRecorder.finish).
    Both logs are read, so one that is not a table is refused even when the trial is left as it is."""
    _CsvTable(os.path.join(trial_dir, layout.EVAL_MEASUREMENTS), global_step)
    table = _CsvTable(os.path.join(trial_dir, layout.MEASUREMENTS), global_step)
    return any(_step(r) == global_step for r in table.rows)


def _step(row: dict[str, Any]) -> int | None:
    try:
        return int(row.get("global_step") or "")
    except ValueError:
        return None


class MetricsLogger:
    """AlgoPerf's metrics logger: eval rows to eval_measurements.csv, others to measurements.csv, all to TB.

    Attached to the workload (``workload.metrics_logger``) so submissions can log their own train metrics.
    """

    def __init__(self, trial_dir: str, resume_step: int = 0, evals: list = ()):
        """``resume_step``: the global step of the checkpoint this run continues from (0 for a fresh start); rows
        and TensorBoard events a previous run logged after it are discarded. ``evals``: the checkpoint's (step,
        result) record of its evals; rows of them that eval_measurements.csv lost are rebuilt from it (their
        preemption_count is left empty: the checkpoint does not say which run logged them)."""
        from torch.utils.tensorboard import SummaryWriter  # slow import; only when logging

        self.trial_dir = trial_dir
        self._tables = {
            False: _CsvTable(os.path.join(trial_dir, layout.MEASUREMENTS), resume_step),
            True: _CsvTable(os.path.join(trial_dir, layout.EVAL_MEASUREMENTS), resume_step),
        }
        rebuilt = self._tables[True].rebuild([_row(result, step, "") for step, result in evals])
        if rebuilt:
            log.warning(
                "%s lost the rows of steps %s; rebuilt them from the checkpoint", layout.EVAL_MEASUREMENTS, rebuilt
            )
        for table in self._tables.values():  # both read and checked before either is changed
            table.repair()
        self._tb = SummaryWriter(log_dir=trial_dir, purge_step=resume_step + 1)

    def has_row(self, global_step: int, is_eval: bool = False) -> bool:
        return any(_step(r) == global_step for r in self._tables[is_eval].rows)

    def append_scalar_metrics(
        self, metrics: dict[str, Any], global_step: int, preemption_count: int | None = None, is_eval: bool = False
    ) -> None:
        row = _row(metrics, global_step, preemption_count)
        self._tables[is_eval].append(row)
        for k in metrics:
            v = row[k]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self._tb.add_scalar(k, v, global_step)

    def add_scalar(self, tag: str, value: float, global_step: int) -> None:
        """TensorBoard only (runner diagnostics that have no AlgoPerf CSV column)."""
        self._tb.add_scalar(tag, value, global_step)

    def flush(self) -> None:
        self._tb.flush()

    def close(self) -> None:
        self._tb.close()


def _row(metrics: dict[str, Any], global_step: int, preemption_count) -> dict[str, Any]:
    return {
        "global_step": global_step,
        "preemption_count": preemption_count,
        **{k: _scalar(v) for k, v in metrics.items()},
    }


def _scalar(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.item()
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        return v.item()
    return v
