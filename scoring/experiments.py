"""Read experiment directories as ``python -m tuning`` and the official runner write them.

``<submission_directory>/<submission>/study_<k>/<workload>_<framework>/trial_<n>/eval_measurements.csv``; a
submission folder holding ``<workload>_<framework>/`` directly (one ``python -m runner`` experiment) is one study.
"""

import csv
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from runner.errors import UsageError

EVALS = "eval_measurements.csv"
STUDY = re.compile(r"^study_(\d+)$")
TRIAL = re.compile(r"^trial_(\d+)$")
WORKLOAD = re.compile(r"^(.+)_(pytorch|jax)$")


@dataclass(frozen=True)
class TrialLog:
    submission: str
    study: int
    workload: str
    framework: str
    trial: int
    path: str
    steps: np.ndarray
    times: np.ndarray  # accumulated submission time at each eval (the ``score`` column)
    metrics: dict[str, np.ndarray] = field(default_factory=dict)  # "validation/<m>" -> values, NaN where blank


def read_experiments(directory: str) -> tuple[list[TrialLog], list[str]]:
    """Every trial under ``directory``, and warnings about folders that hold none."""
    if not os.path.isdir(directory):
        raise UsageError(f"--submission_directory={directory} is not a directory; pass the folder of submissions")
    trials, warnings = [], []
    for submission in sorted(_dirs(directory)):
        sub_dir = os.path.join(directory, submission)
        studies = {int(m.group(1)): os.path.join(sub_dir, d) for d in _dirs(sub_dir) if (m := STUDY.match(d))}
        if not studies and any(WORKLOAD.match(d) for d in _dirs(sub_dir)):
            studies = {0: sub_dir}
        for study, study_dir in sorted(studies.items()):
            for wl_dir in sorted(_dirs(study_dir)):
                if not (wm := WORKLOAD.match(wl_dir)):
                    continue
                for trial_dir in _dirs(os.path.join(study_dir, wl_dir)):
                    if not (tm := TRIAL.match(trial_dir)):
                        continue
                    path = os.path.join(study_dir, wl_dir, trial_dir)
                    if not os.path.isfile(os.path.join(path, EVALS)):
                        warnings.append(f"{path} has no {EVALS} (never evaluated); skipped")
                        continue
                    trials.append(_read_trial(submission, study, wm.group(1), wm.group(2), int(tm.group(1)), path))
    if not trials:
        raise UsageError(
            f"no {EVALS} under {directory}; pass the folder holding one folder per submission "
            f"(<submission>/study_<k>/<workload>_<framework>/trial_<n>/)"
        )
    trials.sort(key=lambda t: (t.submission, t.workload, t.study, t.trial))
    return trials, warnings


def _read_trial(submission, study, workload, framework, trial, path) -> TrialLog:
    with open(os.path.join(path, EVALS), newline="") as f:
        rows = [r for r in csv.DictReader(f) if _float(r.get("global_step")) is not None]
    time_key = "accumulated_submission_time" if rows and "accumulated_submission_time" in rows[0] else "score"
    columns = [k for k in (rows[0] if rows else {}) if k.startswith("validation/")]
    return TrialLog(
        submission=submission,
        study=study,
        workload=workload,
        framework=framework,
        trial=trial,
        path=path,
        steps=np.array([int(_float(r["global_step"])) for r in rows], dtype=np.int64),
        times=np.array([_nan(r.get(time_key)) for r in rows], dtype=np.float64),
        metrics={c: np.array([_nan(r.get(c)) for r in rows], dtype=np.float64) for c in columns},
    )


def _dirs(path: str) -> list[str]:
    return [d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)) and not d.startswith(".")]


def _float(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _nan(v) -> float:
    x = _float(v)
    return math.nan if x is None else x
