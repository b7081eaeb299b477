"""A campaign's plan: submissions x workloads x studies x trials, each with its seed and hyperparameter point.

Pure and deterministic: the same flags give the same plan, so a re-run recognises its finished trials by name and
can check that it continues the same campaign. Layout (docs/algoperf_contract.md section 5, one folder per submission as
AlgoPerf's scoring reads it): ``<root>/<submission>/study_<k>/<workload>_<framework>/trial_<n>/``, studies
counted from 0 and trials from 1 as the official runner does.

Seeds: study ``k`` gets ``SeedSequence([rng_seed, k])``'s first 31-bit word, shared by every submission and
workload (a paired comparison: same data order and initialisation within a study). All trials of a study use
that seed, as the official runner does for a fixed ``--rng_seed``, and a study's search-space points are drawn
with it, so studies sample independent points.
"""

import os
from dataclasses import asdict, dataclass, replace

import numpy as np

from runner.errors import UsageError
from tuning import search_space as ss
from workloads.registry import CPU_SUITE, known_workloads

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBMISSIONS_DIR = os.path.join(REPO_ROOT, "submissions")
SEARCH_SPACE_FILE = "tuning_search_space.json"


@dataclass(frozen=True)
class CampaignConfig:
    submissions: tuple[str, ...]  # names under submissions/ or folders holding submission.py
    workloads: tuple[str, ...]  # workload names; "suite" stands for the CPU suite
    experiment_dir: str
    experiment_name: str
    rng_seed: int
    num_studies: int = 1
    num_tuning_trials: int = 1
    tuning_ruleset: str = "external"
    max_global_steps: int | None = None
    framework: str = "pytorch"
    data_dir: str = ""

    def __post_init__(self):
        if not self.submissions:
            raise UsageError("no submissions given; pass --submissions=nadamw,shampoo (names under submissions/)")
        if not self.workloads:
            raise UsageError("no workloads given; pass --workloads=mnist,fashion_resnet (or --workloads=suite)")
        if not self.experiment_dir or not self.experiment_name:
            raise UsageError("a campaign needs --experiment_dir and --experiment_name; pass both")
        if os.sep in self.experiment_name or self.experiment_name in (".", ".."):
            raise UsageError(f"--experiment_name={self.experiment_name!r} must be a plain folder name, not a path")
        if self.tuning_ruleset not in ("external", "self"):
            raise UsageError(f"unknown --tuning_ruleset={self.tuning_ruleset!r}; use external or self")
        for flag, value in (("num_studies", self.num_studies), ("num_tuning_trials", self.num_tuning_trials)):
            if value < 1:
                raise UsageError(f"--{flag}={value} must be at least 1")
        if self.tuning_ruleset == "self" and self.num_tuning_trials != 1:
            raise UsageError("--tuning_ruleset=self runs one trial per study; drop --num_tuning_trials or set it to 1")
        if self.max_global_steps is not None and self.max_global_steps < 1:
            raise UsageError(f"--max_global_steps={self.max_global_steps} must be at least 1")
        if not 0 <= self.rng_seed < 2**32:
            raise UsageError(f"--rng_seed={self.rng_seed} must lie in [0, 2**32)")
        if self.framework != "pytorch":
            raise UsageError("--framework=jax is not supported yet; use --framework=pytorch")

    @property
    def root(self) -> str:
        return campaign_root(self.experiment_dir, self.experiment_name)

    def identity(self) -> dict:
        """The fields that define the plan; a re-run must match them to continue the campaign."""
        out = asdict(self)
        for field in ("experiment_dir", "experiment_name", "data_dir"):  # where things live, not what runs
            del out[field]
        out["submissions"] = [name for name, _ in resolve_submissions(self.submissions)]
        out["workloads"] = list(expand_workloads(self.workloads))
        return out


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one trial; JSON-serialisable."""

    submission: str
    submission_path: str
    workload: str
    study: int
    trial: int
    seed: int
    hyperparameters: dict | None
    trial_dir: str
    tuning_ruleset: str = "external"
    max_global_steps: int | None = None
    framework: str = "pytorch"
    data_dir: str = ""

    @property
    def id(self) -> str:
        return f"{self.submission}/study_{self.study}/{self.workload}_{self.framework}/trial_{self.trial}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrialSpec":
        return cls(**d)


def campaign_root(experiment_dir: str, experiment_name: str) -> str:
    return os.path.join(os.path.abspath(os.path.expanduser(experiment_dir)), experiment_name)


def study_seed(rng_seed: int, study: int) -> int:
    return int(np.random.SeedSequence([rng_seed, study]).generate_state(1)[0] >> 1)


def expand_workloads(names: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        for w in CPU_SUITE if name == "suite" else (name,):
            if w not in known_workloads():
                raise UsageError(f"unknown workload {w!r}; known: {', '.join(known_workloads())} or suite")
            if w in out:
                raise UsageError(f"workload {w!r} is listed twice; list each workload once")
            out.append(w)
    return tuple(out)


def resolve_submissions(entries: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, path to submission.py) for names under submissions/ or folders/files given by path."""
    out: dict[str, str] = {}
    for entry in entries:
        if os.path.isfile(os.path.join(SUBMISSIONS_DIR, entry, "submission.py")):
            path = os.path.join(SUBMISSIONS_DIR, entry, "submission.py")
        elif os.path.isfile(os.path.join(entry, "submission.py")):
            path = os.path.abspath(os.path.join(entry, "submission.py"))
        elif entry.endswith(".py") and os.path.isfile(entry):
            path = os.path.abspath(entry)
        else:
            known = sorted(
                n
                for n in os.listdir(SUBMISSIONS_DIR)
                if os.path.isfile(os.path.join(SUBMISSIONS_DIR, n, "submission.py"))
            )
            raise UsageError(
                f"unknown submission {entry!r}; use one of {', '.join(known)} or a folder holding submission.py"
            )
        name = os.path.basename(os.path.dirname(path))
        if name in out:
            raise UsageError(f"two submissions are named {name!r}; their logs would share a folder, rename one")
        out[name] = path
    return list(out.items())


def plan(cfg: CampaignConfig) -> list[TrialSpec]:
    """Every trial of the campaign, in the order they are handed out: study-major, so that early results
    already cover every submission and workload."""
    submissions = resolve_submissions(cfg.submissions)
    workloads = expand_workloads(cfg.workloads)
    spaces = {name: _search_space(path, cfg.tuning_ruleset) for name, path in submissions}
    specs = []
    for study in range(cfg.num_studies):
        seed = study_seed(cfg.rng_seed, study)
        for name, path in submissions:
            points = [None] if spaces[name] is None else spaces[name].points(cfg.num_tuning_trials, seed=seed)
            for workload in workloads:
                for trial, point in enumerate(points, start=1):
                    spec = TrialSpec(
                        submission=name,
                        submission_path=path,
                        workload=workload,
                        study=study,
                        trial=trial,
                        seed=seed,
                        hyperparameters=point,
                        trial_dir="",
                        tuning_ruleset=cfg.tuning_ruleset,
                        max_global_steps=cfg.max_global_steps,
                        framework=cfg.framework,
                        data_dir=cfg.data_dir,
                    )
                    specs.append(replace(spec, trial_dir=os.path.join(cfg.root, spec.id)))
    return specs


def _search_space(submission_path: str, ruleset: str) -> ss.SearchSpace | None:
    if ruleset == "self":
        return None
    path = os.path.join(os.path.dirname(submission_path), SEARCH_SPACE_FILE)
    if not os.path.isfile(path):
        raise UsageError(
            f"submission {os.path.dirname(submission_path)} has no {SEARCH_SPACE_FILE}; add one or use "
            f"--tuning_ruleset=self"
        )
    return ss.load(path)
