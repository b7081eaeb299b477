"""A campaign's plan: submissions x workloads x studies x trials, each with its seed and hyperparameter point.

Pure and deterministic: the same flags give the same plan, so a re-run recognises its finished trials by name and
can check that it continues the same campaign. Layout: common/layout.py (``<root>/<submission>/study_<k>/...``,
one folder per submission as AlgoPerf's scoring reads it).

Seeds: study ``k`` gets ``common.seeds.study_seed(rng_seed, k)``, shared by every submission and
workload (a paired comparison: same data order and initialisation within a study). All trials of a study use
that seed, as the official runner does for a fixed ``--rng_seed``, and a study's search-space points are drawn
with it, so studies sample independent points.

Frameworks: ``framework="both"`` plans every trial once per framework, with the same seed and point (a paired
comparison of one algorithm across frameworks), from the submission folder's file for each framework
(``common.layout.SUBMISSION_FILES``) and its one shared search space.
"""

import os
from dataclasses import asdict, dataclass, fields, replace

from common import checks, layout
from common import search_space as ss
from common.errors import UsageError
from common.seeds import study_seed
from runner.trial import TrialConfig
from workloads.registry import CPU_SUITE, known_workloads

BOTH = "both"  # --framework=both: every trial under each framework
FRAMEWORK_CHOICES = (*checks.FRAMEWORKS, BOTH)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBMISSIONS_DIR = os.path.join(REPO_ROOT, "submissions")


@dataclass(frozen=True)
class CampaignConfig:
    submissions: tuple[str, ...]  # names under submissions/, folders holding the submission files, or files
    workloads: tuple[str, ...]  # workload names; "suite" stands for the CPU suite
    experiment_dir: str
    experiment_name: str
    rng_seed: int
    num_studies: int = 1
    num_tuning_trials: int = 1
    tuning_ruleset: str = "external"
    max_global_steps: int | None = None
    refine_time_to_target_sec: float = 0.0  # runner/refine.py; measures more, changes no trial
    framework: str = "pytorch"  # one of FRAMEWORK_CHOICES
    data_dir: str = ""

    def __post_init__(self):
        if not self.submissions:
            raise UsageError("no submissions given; pass --submissions=nadamw,shampoo (names under submissions/)")
        if not self.workloads:
            raise UsageError("no workloads given; pass --workloads=mnist,fashion_resnet (or --workloads=suite)")
        if not self.experiment_dir or not self.experiment_name:
            raise UsageError("a campaign needs --experiment_dir and --experiment_name; pass both")
        checks.experiment_name(self.experiment_name)
        checks.output_dir("experiment_dir", self.experiment_dir)
        checks.tuning_ruleset(self.tuning_ruleset)
        for flag, value in (("num_studies", self.num_studies), ("num_tuning_trials", self.num_tuning_trials)):
            if value < 1:
                raise UsageError(f"--{flag}={value} must be at least 1")
        if self.tuning_ruleset == "self" and self.num_tuning_trials != 1:
            raise UsageError("--tuning_ruleset=self runs one trial per study; drop --num_tuning_trials or set it to 1")
        checks.max_global_steps(self.max_global_steps)
        checks.refine_time_to_target_sec(self.refine_time_to_target_sec)
        checks.rng_seed(self.rng_seed)
        checks.data_dir(self.data_dir)
        if self.framework not in FRAMEWORK_CHOICES:
            raise UsageError(f"unknown --framework={self.framework!r}; use one of {', '.join(FRAMEWORK_CHOICES)}")
        for framework in self.frameworks:
            checks.framework(framework)

    @property
    def frameworks(self) -> tuple[str, ...]:
        return checks.FRAMEWORKS if self.framework == BOTH else (self.framework,)

    @property
    def root(self) -> str:
        return campaign_root(self.experiment_dir, self.experiment_name)

    def identity(self) -> dict:
        """The fields that define the plan; a re-run must match them to continue the campaign."""
        out = asdict(self)
        for field in ("experiment_dir", "experiment_name", "data_dir", "refine_time_to_target_sec"):  # not what runs
            del out[field]
        out["submissions"] = [name for name, _ in resolve_submissions(self.submissions, self.frameworks)]
        out["workloads"] = list(expand_workloads(self.workloads))
        return out


# The TrialConfig a campaign trial runs with, under the names a spec's JSON has always used (the worker's stdin,
# each trial's flags_<n>.json): spec key -> TrialConfig field. TrialConfig owns these settings; a spec only names them.
CONFIG_KEYS = {
    "workload": "workload_name",
    "seed": "rng_seed",
    "tuning_ruleset": "tuning_ruleset",
    "max_global_steps": "max_global_steps",
    "framework": "framework",
    "data_dir": "data_dir",
    "refine_time_to_target_sec": "refine_time_to_target_sec",
}
CAMPAIGN_SETTINGS = {"save_checkpoints": True, "progress": False}  # resuming needs checkpoints; workers are quiet


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one trial: where it sits in the campaign, its point, and the TrialConfig the
    runner is given. Serialised flat (``to_dict``), in the format campaigns have always written."""

    submission: str
    submission_path: str
    study: int
    trial: int
    hyperparameters: dict | None
    trial_dir: str
    config: TrialConfig

    @property
    def id(self) -> str:
        c = self.config
        return layout.campaign_trial(self.submission, self.study, c.workload_name, c.framework, self.trial)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "config"}
        out.update({key: getattr(self.config, name) for key, name in CONFIG_KEYS.items()})
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "TrialSpec":
        own = dict(d)
        config = TrialConfig(
            **{name: own.pop(key) for key, name in CONFIG_KEYS.items() if key in own}, **CAMPAIGN_SETTINGS
        )
        return cls(**own, config=config)


def campaign_root(experiment_dir: str, experiment_name: str) -> str:
    return os.path.join(os.path.abspath(os.path.expanduser(experiment_dir)), experiment_name)


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


def resolve_submissions(entries: tuple[str, ...], frameworks=("pytorch",)) -> list[tuple[str, dict[str, str]]]:
    """(name, {framework: path of its submission file}) for names under submissions/, folders holding the
    submission files (``layout.SUBMISSION_FILES``), or one file given by path (for a single framework)."""
    out: dict[str, dict[str, str]] = {}
    for entry in entries:
        if _is_submission_folder(os.path.join(SUBMISSIONS_DIR, entry)):
            paths = _framework_files(os.path.join(SUBMISSIONS_DIR, entry), frameworks)
        elif _is_submission_folder(entry):
            paths = _framework_files(os.path.abspath(entry), frameworks)
        elif entry.endswith(".py") and os.path.isfile(entry):
            if len(frameworks) > 1:
                raise UsageError(
                    f"submission {entry} is one file but --framework={BOTH} needs one per framework; pass the "
                    f"folder holding {' and '.join(layout.SUBMISSION_FILES[f] for f in frameworks)}"
                )
            paths = {frameworks[0]: os.path.abspath(entry)}
        else:
            known = sorted(
                n for n in os.listdir(SUBMISSIONS_DIR) if _is_submission_folder(os.path.join(SUBMISSIONS_DIR, n))
            )
            raise UsageError(
                f"unknown submission {entry!r}; use one of {', '.join(known)} or a folder holding "
                f"{' or '.join(layout.SUBMISSION_FILES.values())}"
            )
        name = os.path.basename(os.path.dirname(next(iter(paths.values()))))
        if name in out:
            raise UsageError(f"two submissions are named {name!r}; their logs would share a folder, rename one")
        out[name] = paths
    return list(out.items())


def _is_submission_folder(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, f)) for f in layout.SUBMISSION_FILES.values())


def _framework_files(folder: str, frameworks) -> dict[str, str]:
    """The folder's submission file for each framework; a missing one is named, with the way out."""
    files = {f: os.path.join(folder, name) for f, name in layout.SUBMISSION_FILES.items()}
    for framework in frameworks:
        if not os.path.isfile(files[framework]):
            present = next(f for f in checks.FRAMEWORKS if os.path.isfile(files[f]))
            raise UsageError(
                f"submission {os.path.basename(os.path.normpath(folder))} has no {framework} file: "
                f"{files[framework]} is missing; add it or run with --framework={present}"
            )
    return {f: files[f] for f in frameworks}


def plan(cfg: CampaignConfig) -> list[TrialSpec]:
    """Every trial of the campaign, in the order they are handed out: study-major, so that early results
    already cover every submission and workload, and a trial's twins in other frameworks right after it."""
    submissions = resolve_submissions(cfg.submissions, cfg.frameworks)
    workloads = expand_workloads(cfg.workloads)
    spaces = {name: search_space(next(iter(paths.values())), cfg.tuning_ruleset) for name, paths in submissions}
    specs = []
    for study in range(cfg.num_studies):
        seed = study_seed(cfg.rng_seed, study)
        for name, paths in submissions:
            points = [None] if spaces[name] is None else spaces[name].points(cfg.num_tuning_trials, seed=seed)
            for workload in workloads:
                for trial, point in enumerate(points, start=1):
                    for framework, path in paths.items():
                        config = TrialConfig(
                            workload_name=workload,
                            framework=framework,
                            rng_seed=seed,
                            data_dir=cfg.data_dir,
                            tuning_ruleset=cfg.tuning_ruleset,
                            max_global_steps=cfg.max_global_steps,
                            refine_time_to_target_sec=cfg.refine_time_to_target_sec,
                            **CAMPAIGN_SETTINGS,
                        )
                        spec = TrialSpec(name, path, study, trial, point, trial_dir="", config=config)
                        specs.append(replace(spec, trial_dir=os.path.join(cfg.root, spec.id)))
    return specs


def search_space(submission_path: str, ruleset: str) -> ss.SearchSpace | None:
    """The submission's tuning_search_space.json (None under self-tuning)."""
    if ruleset == "self":
        return None
    path = os.path.join(os.path.dirname(submission_path), layout.SEARCH_SPACE)
    if not os.path.exists(path):  # one that is there but not a regular file is ss.load's to refuse
        raise UsageError(
            f"submission {os.path.dirname(submission_path)} has no {layout.SEARCH_SPACE}; add one or use "
            f"--tuning_ruleset=self"
        )
    return ss.load(path)
