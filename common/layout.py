"""The experiment tree's names, written by runner and tuning and read by scoring: the one owner of them.

    <root>/<submission>/study_<k>/<workload>_<framework>/trial_<n>/   (a campaign, ``python -m tuning``)
    <experiment_dir>/<experiment_name>/<workload>_<framework>/trial_<n>/   (one ``python -m runner`` experiment)

Studies count from 0 and trials from 1, as AlgoPerf's runner and scorer do (docs/algoperf_contract.md section 5).
A trial folder holds eval_measurements.csv (what is scored), measurements.csv, meta_data_<i>.json and
flags_<i>.json (one per preemption i), hparams.json, the checkpoint and, under tuning, trial_result.json.
Pure names: nothing here touches the file system.
"""

import os
import re

from common.checks import FRAMEWORKS

EVAL_MEASUREMENTS = "eval_measurements.csv"
MEASUREMENTS = "measurements.csv"
HPARAMS = "hparams.json"
CHECKPOINT = "checkpoint.pt"
CHECKPOINT_JAX = "checkpoint.npz"  # a JAX trial's: arrays and JSON, no pickle
TRIAL_RESULT = "trial_result.json"  # a tuning trial's commit point
MANIFEST = "manifest.json"  # at a campaign's root
SEARCH_SPACE = "tuning_search_space.json"  # next to a submission.py, shared by its frameworks
MAX_STEP = 2**53  # the largest global_step a log or checkpoint may hold: scoring reads steps as floats, exact to here
SUBMISSION_FILES = {"pytorch": "submission.py", "jax": "submission_jax.py"}  # a submission folder's file per framework

_STUDY = re.compile(r"^study_(\d+)$")
_TRIAL = re.compile(r"^trial_(\d+)$")
_WORKLOAD = re.compile(rf"^(.+)_({'|'.join(FRAMEWORKS)})$")
_META = re.compile(r"^meta_data_\d+\.json$")
_FLAGS = re.compile(r"^flags_\d+\.json$")
_TEMP = re.compile(r"^(.+)\.tmp\d+$")  # common/atomic.py's file beside its target, left by a kill mid-write
TB_EVENTS = "events.out.tfevents."  # TensorBoard's event files start so
TRIAL_FILES = frozenset({EVAL_MEASUREMENTS, MEASUREMENTS, HPARAMS, CHECKPOINT, CHECKPOINT_JAX, TRIAL_RESULT})


def study_name(k: int) -> str:
    return f"study_{k}"


def trial_name(n: int) -> str:
    return f"trial_{n}"


def workload_name(workload: str, framework: str) -> str:
    return f"{workload}_{framework}"


def trial_dir(root: str, workload: str, framework: str, n: int) -> str:
    """Trial ``n`` (from 1) of ``workload`` under an experiment or study folder ``root``."""
    return os.path.join(root, workload_name(workload, framework), trial_name(n))


def campaign_trial(submission: str, study: int, workload: str, framework: str, n: int) -> str:
    """A campaign trial's path below the campaign root, with '/' separators (it is also the trial's id)."""
    return f"{submission}/{study_name(study)}/{workload_name(workload, framework)}/{trial_name(n)}"


def meta_data_file(preemption: int) -> str:
    return f"meta_data_{preemption}.json"


def flags_file(preemption: int) -> str:
    return f"flags_{preemption}.json"


def parse_study(name: str) -> int | None:
    """k of a ``study_<k>`` folder name, else None."""
    m = _STUDY.match(name)
    return int(m.group(1)) if m else None


def parse_trial(name: str) -> int | None:
    """n of a ``trial_<n>`` folder name, else None."""
    m = _TRIAL.match(name)
    return int(m.group(1)) if m else None


def parse_workload(name: str) -> tuple[str, str] | None:
    """(workload, framework) of a ``<workload>_<framework>`` folder name, else None."""
    m = _WORKLOAD.match(name)
    return (m.group(1), m.group(2)) if m else None


def is_meta_data(name: str) -> bool:
    return bool(_META.match(name))


def is_trial_file(name: str) -> bool:
    """Whether kronbench writes a file of this name in a trial folder: all that ``--overwrite`` may remove."""
    temp = _TEMP.match(name)
    name = temp.group(1) if temp else name
    return name in TRIAL_FILES or is_meta_data(name) or bool(_FLAGS.match(name)) or name.startswith(TB_EVENTS)
