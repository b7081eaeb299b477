"""Read experiment directories as ``python -m tuning`` and the official runner write them (names: common/layout.py).

``<submission_directory>/<submission>/study_<k>/<workload>_<framework>/trial_<n>/eval_measurements.csv``; a
submission folder holding ``<workload>_<framework>/`` directly (one ``python -m runner`` experiment) is one study.
"""

import csv
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from common import layout
from common.errors import UsageError

TIME_COLUMNS = ("score", "accumulated_submission_time")  # the official scorer's time column first


@dataclass(frozen=True)
class TrialLog:
    submission: str
    study: int
    workload: str
    framework: str
    trial: int
    path: str
    steps: np.ndarray
    times: np.ndarray  # submission time at each eval (the ``score`` column)
    metrics: dict[str, np.ndarray] = field(default_factory=dict)  # "validation/<m>" -> values, NaN where blank
    diverged: bool = False  # meta_data records a divergence: never reaches, whatever its logs say
    refined: tuple[float, float] | None = None  # runner/refine.py's (time, grid time it refines), from meta_data


class BadLog(Exception):
    """An eval_measurements.csv the scorer cannot trust; the message says why."""


def read_experiments(
    directory: str, metric_column: Callable[[str, str], str] | None = None, lenient: bool = False
) -> tuple[list[TrialLog], list[str], list[tuple[str, str]]]:
    """Every trial under ``directory``, warnings, and the trials skipped as (path, reason).

    ``metric_column(workload, framework)`` names the column each log must hold. A log that is unreadable or
    inconsistent (see ``_read_trial``) is an error naming it, or with ``lenient`` a skipped trial.
    """
    if not os.path.isdir(directory):
        raise UsageError(f"--submission_directory={directory} is not a directory; pass the folder of submissions")
    trials, warnings, skipped = [], [], []
    for submission, study, workload, framework, trial, path in _trial_dirs(directory):
        log = os.path.join(path, layout.EVAL_MEASUREMENTS)
        if not os.path.isfile(log):
            skipped.append((path, f"no {layout.EVAL_MEASUREMENTS} (never evaluated)"))
            continue
        column = metric_column(workload, framework) if metric_column else None
        try:
            trials.append(_read_trial(submission, study, workload, framework, trial, path, column))
        except BadLog as e:
            if not lenient:
                raise UsageError(f"{log} {e}; repair or remove it, or pass --lenient to skip it") from None
            warnings.append(f"{log} {e}; skipped (--lenient)")
            skipped.append((path, str(e)))
    if not trials:
        raise UsageError(
            f"no usable {layout.EVAL_MEASUREMENTS} under {directory}; pass the folder holding one folder per "
            f"submission (<submission>/study_<k>/<workload>_<framework>/trial_<n>/)"
        )
    trials.sort(key=lambda t: (t.submission, t.workload, t.study, t.trial))
    return trials, warnings, skipped


def _trial_dirs(directory: str):
    """(submission, study, workload, framework, trial, path) of every trial folder, in a fixed order."""
    for submission in sorted(_dirs(directory)):
        sub_dir = os.path.join(directory, submission)
        studies = {k: os.path.join(sub_dir, d) for d in _dirs(sub_dir) if (k := layout.parse_study(d)) is not None}
        if not studies and any(layout.parse_workload(d) for d in _dirs(sub_dir)):
            studies = {0: sub_dir}
        for study, study_dir in sorted(studies.items()):
            for wl_dir in sorted(_dirs(study_dir)):
                if not (parsed := layout.parse_workload(wl_dir)):
                    continue
                wl_path = os.path.join(study_dir, wl_dir)
                numbered = [(n, d) for d in _dirs(wl_path) if (n := layout.parse_trial(d)) is not None]
                for trial, trial_dir in sorted(numbered):
                    yield submission, study, *parsed, trial, os.path.join(wl_path, trial_dir)


def _read_trial(submission, study, workload, framework, trial, path, column=None) -> TrialLog:
    """Refuses (BadLog) a log that is empty, header-only, not UTF-8, lacks the step, time or metric column, holds a
    non-numeric step, time or metric, a negative step or time, a fractional step (or one past 2**53), a step twice,
    or whose steps or times go backwards. Blank metric cells are NaN."""
    try:
        with open(os.path.join(path, layout.EVAL_MEASUREMENTS), newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = [r for r in reader if r]  # blank lines carry nothing
    except UnicodeDecodeError:
        raise BadLog("is not UTF-8 text") from None
    except csv.Error as e:
        raise BadLog(f"is not valid CSV ({e})") from None
    if not header:
        raise BadLog("is empty")
    if not rows:
        raise BadLog("has a header but no rows")
    time_key = next((k for k in TIME_COLUMNS if k in header), None)
    needed = {"global_step": "step column global_step", time_key or TIME_COLUMNS[0]: "time column score"}
    if column is not None:
        needed[column] = f"metric column {column}"
    for key, what in needed.items():
        if key not in header:
            raise BadLog(f"has no {what}")
    ragged = next((n for n, r in enumerate(rows) if len(r) != len(header)), None)
    if ragged is not None:
        raise BadLog(f"has {len(rows[ragged])} fields at line {ragged + 2} where its header has {len(header)}")
    col = {k: header.index(k) for k in header}
    steps = _numbers(rows, col["global_step"], "global_step", blank_ok=False)
    times = _numbers(rows, col[time_key], time_key, blank_ok=False)
    for name, values in (("steps", steps), ("times", times)):
        if not np.all(np.isfinite(values)):
            raise BadLog(f"has a non-finite value among its {name}")
        if np.any(values < 0):
            i = int(np.flatnonzero(values < 0)[0])
            raise BadLog(f"has a negative {name[:-1]} {values[i]:g} at line {i + 2}")
        if np.any(np.diff(values) < 0):
            i = int(np.flatnonzero(np.diff(values) < 0)[0])
            raise BadLog(f"has {name} going backwards at line {i + 3} ({values[i]:g} then {values[i + 1]:g})")
    odd = np.flatnonzero((steps != np.round(steps)) | (steps > layout.MAX_STEP))
    if odd.size:
        i = int(odd[0])
        raise BadLog(f"has global_step {steps[i]:g} at line {i + 2}, not a whole number of steps up to 2**53")
    if np.any(np.diff(steps) == 0):
        i = int(np.flatnonzero(np.diff(steps) == 0)[0])
        raise BadLog(f"has global_step {steps[i]:g} twice, at lines {i + 2} and {i + 3}")
    scored = [column] if column is not None else [k for k in header if k.startswith("validation/")]
    metrics = {k: _numbers(rows, col[k], k, blank_ok=True) for k in scored}
    return TrialLog(
        submission=submission,
        study=study,
        workload=workload,
        framework=framework,
        trial=trial,
        path=path,
        steps=steps.astype(np.int64),
        times=times,
        metrics=metrics,
        **_meta_records(path),
    )


def _numbers(rows: list[list[str]], i: int, name: str, blank_ok: bool) -> np.ndarray:
    out = np.empty(len(rows), dtype=np.float64)
    for n, row in enumerate(rows):
        cell = row[i].strip()
        if cell == "" and blank_ok:
            out[n] = math.nan
            continue
        try:
            out[n] = float(cell)
        except ValueError:
            raise BadLog(f"has a non-numeric {name} {cell!r} at line {n + 2}") from None
    return out


def _meta_records(path: str) -> dict:
    """What the trial's meta_data_*.json record: ``diverged`` if any records a divergence (key ``diverged``,
    neither null nor false), and ``refined``, the first refined time to target with a finite time and grid time."""
    out = {"diverged": False, "refined": None}
    for name in sorted(os.listdir(path)):
        if not layout.is_meta_data(name):
            continue
        try:
            with open(os.path.join(path, name), encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError, RecursionError):
            continue  # metadata is informative; the eval log is what is scored
        if not isinstance(meta, dict):
            continue
        if meta.get("diverged") not in (None, False):  # a record, a step or True
            out["diverged"] = True
        if out["refined"] is None:
            out["refined"] = _refined(meta.get("refined_time_to_target"))
    return out


def _refined(record) -> tuple[float, float] | None:
    try:
        time, grid = float(record["time"]), float(record["grid_time"])
    except (TypeError, KeyError, ValueError):
        return None
    return (time, grid) if math.isfinite(time) and math.isfinite(grid) and 0 <= time <= grid else None


def _dirs(path: str) -> list[str]:
    return [d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith(".")]
