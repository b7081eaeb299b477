"""A battery of malformed inputs to the command lines: each must exit 2 with one ``error:`` line on stderr that
names the problem, print no traceback, and leave every file it was given byte for byte as it was.

Cases are rows of tables (``RUNNER``, ``SEARCH_SPACES``, ``CHECKPOINTS``, ``TUNING``, ``SCORING``), and optimizer
constructors have their own table (``OPTIMIZERS``: one exception, one line, at construction). A row builds its
argv in a fresh folder (``Ctx.tmp``), which is snapshotted before and after the run.
"""

import gzip
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from common.locks import HOLDER, exclusive_dir
from tests.bad_inputs import assert_refused, changed, run_main, run_subprocess, snapshot
from tests.cli_helpers import FIXTURES, NADAMW, NADAMW_SPACE, ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

BASELINE_POINT = json.loads(Path(NADAMW_SPACE).read_text())[0]
TRIAL = ("exp", "e", "mnist_pytorch", "trial_1")


@dataclass
class Ctx:
    tmp: Path  # the case's folder: everything in it must be unchanged by a refused run
    trial: Path  # a finished two-step trial of nadamw on mnist (seed 0, point 0), shared read-only

    def file(self, name: str, content: str | bytes) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)

    def trial_copy(self) -> Path:
        """The shared trial, copied to where a runner with the default flags looks for it."""
        target = self.tmp.joinpath(*TRIAL)
        shutil.copytree(self.trial, target)
        return target


Arg = str | Callable[[Ctx], str]


@dataclass(frozen=True)
class Case:
    id: str
    module: str  # runner | tuning (| scoring)
    args: dict[str, Arg]  # flag -> value (None drops a default flag, True writes --flag)
    fragment: str  # must appear in the error line
    setup: Callable[[Ctx], None] | None = None
    positional: tuple[str, ...] = ()
    subprocess: bool = False  # a real `python -m` instead of a fork
    skip: str | None = None
    hold: Callable[[Ctx], AbstractContextManager] | None = None  # held (e.g. a lock) while the command runs


RUNNER_DEFAULTS = {
    "workload": "mnist",
    "submission_path": NADAMW,
    "tuning_search_space": NADAMW_SPACE,
    "experiment_dir": lambda c: str(c.tmp / "exp"),
    "experiment_name": "e",
    "max_global_steps": "2",
    "rng_seed": "0",
}
TUNING_DEFAULTS = {
    "submissions": "nadamw",
    "workloads": "mnist",
    "experiment_dir": lambda c: str(c.tmp / "exp"),
    "experiment_name": "c",
    "rng_seed": "0",
    "max_global_steps": "2",
    "progress": "off",
}
SCORING_DEFAULTS = {
    "submission_directory": lambda c: str(c.tmp / "logs"),
    "output_dir": lambda c: str(c.tmp / "out"),
}
DEFAULTS = {"runner": RUNNER_DEFAULTS, "tuning": TUNING_DEFAULTS, "scoring": SCORING_DEFAULTS}


def argv(case: Case, ctx: Ctx) -> list[str]:
    out = list(case.positional)
    for name, value in {**DEFAULTS[case.module], **case.args}.items():
        if value is None:
            continue
        value = value(ctx) if callable(value) else value
        out.append(f"--{name}" if value is True else f"--{name}={value}")
    return out


def text(content: str | bytes, name: str = "space.json") -> Callable[[Ctx], str]:
    return lambda c: c.file(name, content)


def space(obj) -> Callable[[Ctx], str]:
    """A search space holding ``obj``, written as JSON (NaN and Infinity as Python's json writes them)."""
    return text(json.dumps(obj))


def point(**changes) -> dict:
    """The baseline's first point with ``changes`` (a value of ... drops the key)."""
    p = {**BASELINE_POINT, **changes}
    return {k: v for k, v in p.items() if v is not ...}


def sub_folder(space_obj, name: str = "mysub", body: str = "from submissions.nadamw.submission import *\n"):
    """A submission folder (nadamw's functions and declaration unless ``body`` says otherwise) with a space."""

    def make(c: Ctx) -> str:
        c.file(f"{name}/submission.py", body)
        if space_obj is not None:
            c.file(f"{name}/tuning_search_space.json", json.dumps(space_obj))
        return str(c.tmp / name)

    return make


def sub_file(body: str) -> Callable[[Ctx], str]:
    return lambda c: c.file("broken/submission.py", body)


REQUIRED_LR = """
from dataclasses import dataclass
from submissions.nadamw.submission import data_selection, get_batch_size, init_optimizer_state, update_params


@dataclass(frozen=True)
class HYPERPARAMETERS:
    learning_rate: float
    warmup_factor: float = 0.05
"""


def trial_with(**files: bytes | str) -> Callable[[Ctx], None]:
    """Setup: a trial directory holding ``files``."""

    def make(c: Ctx) -> None:
        for name, content in files.items():
            c.file(os.path.join(*TRIAL, name), content)

    return make


def with_copy(change: Callable[[Path], None]) -> Callable[[Ctx], None]:
    """Setup: the shared trial copied into place, then ``change``d."""
    return lambda c: change(c.trial_copy())


def edit_checkpoint(**identity) -> Callable[[Path], None]:
    def change(trial: Path) -> None:
        blob = torch.load(trial / "checkpoint.pt", weights_only=True)
        blob["identity"].update(identity)
        torch.save(blob, trial / "checkpoint.pt")

    return change


def truncate_checkpoint(trial: Path) -> None:
    data = (trial / "checkpoint.pt").read_bytes()
    (trial / "checkpoint.pt").write_bytes(data[: len(data) // 2])


def append_to(name: str, content: bytes) -> Callable[[Path], None]:
    def change(trial: Path) -> None:
        with open(trial / name, "ab") as f:
            f.write(content)

    return change


def replace_file(name: str, content: bytes) -> Callable[[Path], None]:
    return lambda trial: (trial / name).write_bytes(content)


def planted(obj) -> Callable[[Ctx], None]:
    """Setup: ``obj`` saved by torch as the trial's checkpoint."""

    def make(c: Ctx) -> None:
        c.tmp.joinpath(*TRIAL).mkdir(parents=True)
        torch.save(obj, c.tmp.joinpath(*TRIAL, "checkpoint.pt"))

    return make


def _drop_identity(trial: Path) -> None:
    blob = torch.load(trial / "checkpoint.pt", weights_only=True)
    blob["identity"] = None
    torch.save(blob, trial / "checkpoint.pt")


def _shrink_params(trial: Path) -> None:
    blob = torch.load(trial / "checkpoint.pt", weights_only=True)
    name = next(iter(blob["model_params"]))
    blob["model_params"][name] = blob["model_params"][name][:1]
    torch.save(blob, trial / "checkpoint.pt")


class Payload:
    """Unpickling this creates ``marker``: proof that a checkpoint ran code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_payload(torch_format: bool) -> Callable[[Ctx], None]:
    def make(c: Ctx) -> None:
        folder = c.tmp.joinpath(*TRIAL)
        folder.mkdir(parents=True)
        payload = Payload(str(c.tmp / "PWNED"))
        if torch_format:
            torch.save(payload, folder / "checkpoint.pt")
        else:
            (folder / "checkpoint.pt").write_bytes(pickle.dumps(payload))

    return make


def planted_mnist(c: Ctx) -> str:
    """A data directory whose mnist.pkl.gz would create PWNED when unpickled."""
    c.file("data/mnist.pkl.gz", gzip.compress(pickle.dumps(Payload(str(c.tmp / "PWNED")))))
    return str(c.tmp / "data")


def unwritable(c: Ctx) -> None:
    (c.tmp / "ro").mkdir()
    os.chmod(c.tmp / "ro", 0o500)


AS_ROOT = "root may write anywhere" if os.geteuid() == 0 else None
RESUME = {"resume_last_run": True}
R, T = "runner", "tuning"

RUNNER = [
    Case("max_steps_zero", R, {"max_global_steps": "0"}, "--max_global_steps=0 must be at least 1"),
    Case("max_steps_negative", R, {"max_global_steps": "-5"}, "--max_global_steps=-5"),
    Case("refine_negative", R, {"refine_time_to_target_sec": "-1"}, "--refine_time_to_target_sec=-1.0 must be"),
    Case("refine_infinite", R, {"refine_time_to_target_sec": "inf"}, "--refine_time_to_target_sec=inf must be"),
    Case("seed_negative", R, {"rng_seed": "-1"}, "--rng_seed=-1 must lie in [0, 2**32 - 1]"),
    Case("seed_too_big", R, {"rng_seed": str(2**32)}, f"--rng_seed={2**32}"),
    Case("data_dir_missing", R, {"data_dir": lambda c: str(c.tmp / "nope")}, "is not a directory"),
    Case("data_dir_is_file", R, {"data_dir": text("x", "f")}, "is not a directory"),
    Case("mnist_pickle_payload", R, {"data_dir": planted_mnist}, "is not the MNIST pickle"),
    Case("name_dotdot", R, {"experiment_name": ".."}, "must be a plain folder name"),
    Case("name_with_sep", R, {"experiment_name": "a/b"}, "must be a plain folder name"),
    Case("name_absolute", R, {"experiment_name": "/etc"}, "must be a plain folder name"),
    Case("name_dot", R, {"experiment_name": "."}, "must be a plain folder name"),
    Case("dir_without_name", R, {"experiment_name": None}, "--experiment_dir needs --experiment_name"),
    Case("experiment_dir_is_file", R, {"experiment_dir": text("x", "f")}, "is a file, not a directory"),
    Case("experiment_dir_under_file", R, {"experiment_dir": lambda c: c.file("f", "x") + "/sub"}, "is a file"),
    Case(
        "experiment_dir_unwritable",
        R,
        {"experiment_dir": lambda c: str(c.tmp / "ro")},
        "not writable",
        unwritable,
        skip=AS_ROOT,
    ),
    Case("overwrite_and_resume", R, {"overwrite": True, "resume_last_run": True}, "pass only one"),
    Case("framework_jax_no_port", R, {"framework": "jax", "workload": "qm9_gnn"}, "has no JAX port yet"),
    Case("framework_unknown", R, {"framework": "tf"}, "--framework=tf"),
    Case("torch_submission_under_jax", R, {"framework": "jax"}, "is written for pytorch, not jax"),
    Case(
        "jax_submission_under_torch",
        R,
        {"submission_path": os.path.join(ROOT, "submissions", "nadamw", "submission_jax.py")},
        "is written for jax, not pytorch",
    ),
    Case("num_trials_zero", R, {"num_tuning_trials": "0"}, "--num_tuning_trials=0 must be at least 1"),
    Case(
        "indices_reversed",
        R,
        {"num_tuning_trials": "5", "hparam_start_index": "3", "hparam_end_index": "2"},
        "must satisfy 0 <= start < end",
    ),
    Case("index_past_end", R, {"num_tuning_trials": "5", "hparam_end_index": "9"}, "must satisfy"),
    Case("kron_quality_negative", R, {"log_kron_quality_every": "-1"}, "must be >= 0"),
    Case("missing_workload", R, {"workload": None}, "missing --workload"),
    Case("missing_submission", R, {"submission_path": None}, "missing --submission_path"),
    Case("submission_not_found", R, {"submission_path": lambda c: str(c.tmp / "no.py")}, "not found"),
    Case("submission_is_dir", R, {"submission_path": lambda c: str(c.tmp)}, "not found"),
    Case("submission_syntax_error", R, {"submission_path": sub_file("def (:\n")}, "syntax error at line 1"),
    Case("submission_raises_on_import", R, {"submission_path": sub_file("1 / 0\n")}, "ZeroDivisionError"),
    Case("submission_missing_import", R, {"submission_path": sub_file("import no_such_mod\n")}, "no_such_mod"),
    Case(
        "submission_lacks_functions",
        R,
        {"submission_path": os.path.join(FIXTURES, "missing_update", "submission.py")},
        "update_params, data_selection",
    ),
    Case("unknown_workload", R, {"workload": "imagenet_mlp"}, "unknown workload 'imagenet_mlp'"),
    Case("positional_argument", R, {}, "unexpected arguments", positional=("extra",)),
    Case("unknown_flag", R, {"learning_rate": "1"}, "Unknown command line flag 'learning_rate'"),
    Case("flag_not_integer", R, {"max_global_steps": "ten"}, "--max_global_steps=ten"),
    Case("flag_not_boolean", R, {"overwrite": "maybe"}, "--overwrite=maybe"),
    Case("self_with_space", R, {"tuning_ruleset": "self"}, "not allowed with --tuning_ruleset=self"),
    Case("external_without_space", R, {"tuning_search_space": None}, "needs --tuning_search_space"),
    Case("trial_dir_exists", R, {}, "already exists", trial_with(**{"eval_measurements.csv": "precious\n"})),
    Case("trial_dir_is_file", R, {}, "is a file, not a trial directory", lambda c: c.file(os.path.join(*TRIAL), "x")),
    Case(
        "space_missing_file",
        R,
        {"tuning_search_space": lambda c: str(c.tmp / "no.json")},
        "does not exist",
        subprocess=True,
    ),
]

SEARCH_SPACES = [
    Case("space_not_json", R, {"tuning_search_space": text("[{")}, "is not valid JSON"),
    Case("space_not_utf8", R, {"tuning_search_space": text(b"\xff\xfe[]")}, "is not valid JSON"),
    Case("space_empty_file", R, {"tuning_search_space": text("")}, "is not valid JSON"),
    Case("space_empty_list", R, {"tuning_search_space": space([])}, "the list of points is empty"),
    Case("space_empty_object", R, {"tuning_search_space": space({})}, "expected a non-empty object"),
    Case("space_scalar", R, {"tuning_search_space": space(3)}, "expected a non-empty object"),
    Case("point_not_object", R, {"tuning_search_space": space([1])}, "point 0 is not a non-empty object"),
    Case("point_empty", R, {"tuning_search_space": space([{}])}, "point 0 is not a non-empty object"),
    Case("point_nan", R, {"tuning_search_space": space([point(learning_rate=float("nan"))])}, "learning_rate=nan"),
    Case("point_infinity", R, {"tuning_search_space": space([point(weight_decay=float("inf"))])}, "weight_decay"),
    Case("point_null", R, {"tuning_search_space": space([point(dropout_rate=None)])}, "dropout_rate=None"),
    Case("point_list_value", R, {"tuning_search_space": space([point(beta2=[0.9])])}, "beta2=[0.9]"),
    Case("point_bad_name", R, {"tuning_search_space": space([{"learning-rate": 0.1}])}, "'learning-rate' is not"),
    Case("point_private_name", R, {"tuning_search_space": space([{"_lr": 0.1}])}, "'_lr' is not a valid"),
    Case("point_keyword_name", R, {"tuning_search_space": space([{"lambda": 0.1}])}, "'lambda' is not a valid"),
    Case(
        "point_unknown_key",
        R,
        {"tuning_search_space": space([point(learning_rat=0.1)])},
        "learning_rat, which the submission does not use",
    ),
    Case(
        "point_kron_key_on_nadamw",
        R,
        {"tuning_search_space": space([point(precondition_frequency=10)])},
        "precondition_frequency, which the submission does not use",
    ),
    Case(
        "point_negative_lr",
        R,
        {"tuning_search_space": space([point(learning_rate=-0.001)])},
        "learning_rate=-0.001 is not a number in (0, inf]",
    ),
    Case("point_zero_lr", R, {"tuning_search_space": space([point(learning_rate=0)])}, "learning_rate=0 is not"),
    Case(
        "point_string_lr",
        R,
        {"tuning_search_space": space([point(learning_rate="0.001")])},
        "learning_rate='0.001' is not a number",
    ),
    Case("point_bool_beta2", R, {"tuning_search_space": space([point(beta2=True)])}, "beta2=True is not a number"),
    Case("point_dropout_one", R, {"tuning_search_space": space([point(dropout_rate=1.0)])}, "dropout_rate=1.0"),
    Case("point_beta1_above_one", R, {"tuning_search_space": space([point(one_minus_beta1=1.5)])}, "one_minus_beta1"),
    Case("point_negative_wd", R, {"tuning_search_space": space([point(weight_decay=-0.1)])}, "weight_decay=-0.1"),
    Case("second_point_bad", R, {"tuning_search_space": space([point(), point(warmup_factor=2.0)])}, "point 1: warm"),
    Case(
        "too_few_points",
        R,
        {"tuning_search_space": space([point()]), "num_tuning_trials": "2"},
        "2 trials requested but the list holds 1 points",
    ),
    Case(
        "range_min_above_max",
        R,
        {"tuning_search_space": space({"learning_rate": {"min": 1, "max": 0.1, "scaling": "log"}})},
        "min 1 > max 0.1",
    ),
    Case(
        "range_log_nonpositive",
        R,
        {"tuning_search_space": space({"learning_rate": {"min": 0, "max": 0.1, "scaling": "log"}})},
        "log scaling with min 0",
    ),
    Case(
        "range_unknown_scaling",
        R,
        {"tuning_search_space": space({"learning_rate": {"min": 0.1, "max": 1, "scaling": "cubic"}})},
        "unknown scaling 'cubic'",
    ),
    Case(
        "range_missing_max",
        R,
        {"tuning_search_space": space({"learning_rate": {"min": 0.1, "scaling": "log"}})},
        "lacks max",
    ),
    Case(
        "range_string_min",
        R,
        {"tuning_search_space": space({"learning_rate": {"min": "a", "max": 1, "scaling": "linear"}})},
        "learning_rate.min='a'",
    ),
    Case(
        "range_infinite_max",
        R,
        {"tuning_search_space": space({"learning_rate": {"min": 0.1, "max": float("inf"), "scaling": "linear"}})},
        "learning_rate.max=inf",
    ),
    Case("range_not_object", R, {"tuning_search_space": space({"learning_rate": 0.1})}, "must be an object"),
    Case(
        "range_unknown_key",
        R,
        {"tuning_search_space": space({"learnin_rate": {"min": 0.1, "max": 1, "scaling": "log"}})},
        "learnin_rate is not a hyperparameter of the submission",
    ),
    Case(
        "range_negative_lr",
        R,
        {"tuning_search_space": space({"learning_rate": {"min": -1, "max": 1, "scaling": "linear"}})},
        "learning_rate=-1.0 is not a number in (0, inf]",
    ),
    Case(
        "range_smoothing_to_one",
        R,
        {"tuning_search_space": space({"label_smoothing": {"min": 0, "max": 1, "scaling": "linear"}})},
        "label_smoothing=1.0 is not a number in [0, 1)",
    ),
    Case(
        "feasible_empty",
        R,
        {"tuning_search_space": space({"dropout_rate": {"feasible_points": []}})},
        "empty feasible_points",
    ),
    Case(
        "feasible_object",
        R,
        {"tuning_search_space": space({"dropout_rate": {"feasible_points": [{}]}})},
        "non-numeric feasible point",
    ),
    Case(
        "feasible_out_of_range",
        R,
        {"tuning_search_space": space({"dropout_rate": {"feasible_points": [0.0, 2.0]}})},
        "dropout_rate=2.0 is not a number in [0, 1)",
    ),
    Case(
        "required_missing_point",
        R,
        {
            "submission_path": lambda c: c.file("req/submission.py", REQUIRED_LR),
            "tuning_search_space": space([{"warmup_factor": 0.1}]),
        },
        "lacks learning_rate, which has no default",
    ),
    Case(
        "required_missing_range",
        R,
        {
            "submission_path": lambda c: c.file("req/submission.py", REQUIRED_LR),
            "tuning_search_space": space({"warmup_factor": {"feasible_points": [0.1]}}),
        },
        "learning_rate has no default and no range",
    ),
    Case(
        "declaration_not_a_type",
        R,
        {"submission_path": sub_file("from submissions.nadamw.submission import *\nHYPERPARAMETERS = 3\n")},
        "HYPERPARAMETERS must be a dataclass type or a mapping",
    ),
]

CHECKPOINTS = [
    Case(
        "ckpt_random_bytes",
        R,
        RESUME,
        "checkpoint.pt is not a readable kronbench checkpoint",
        trial_with(**{"checkpoint.pt": os.urandom(256)}),
    ),
    Case("ckpt_empty", R, RESUME, "is not a readable kronbench checkpoint", trial_with(**{"checkpoint.pt": b""})),
    Case("ckpt_truncated", R, RESUME, "is not a readable kronbench checkpoint", with_copy(truncate_checkpoint)),
    Case("ckpt_pickle_payload", R, RESUME, "--overwrite", pickle_payload(torch_format=True)),
    Case("ckpt_legacy_pickle_payload", R, RESUME, "--overwrite", pickle_payload(torch_format=False)),
    Case("ckpt_foreign_dict", R, RESUME, "is not a kronbench checkpoint (no identity", planted({"w": torch.ones(2)})),
    Case("ckpt_foreign_list", R, RESUME, "is not a kronbench checkpoint (no identity", planted([1, 2])),
    Case(
        "ckpt_foreign_state_dict",
        R,
        RESUME,
        "is not a kronbench checkpoint",
        planted(torch.nn.Linear(2, 2).state_dict()),
    ),
    Case(
        "resume_other_seed",
        R,
        {**RESUME, "rng_seed": "1"},
        "belongs to another trial (rng_seed was 0, now 1)",
        with_copy(lambda t: None),
    ),
    Case(
        "resume_other_submission",
        R,
        {**RESUME, "submission_path": os.path.join(ROOT, "submissions", "shampoo", "submission.py")},
        "submission was 'nadamw', now 'shampoo'",
        with_copy(lambda t: None),
    ),
    Case(
        "resume_other_workload",
        R,
        RESUME,
        "workload was 'fashion_resnet', now 'mnist'",
        with_copy(edit_checkpoint(workload="fashion_resnet")),
    ),
    Case(
        "resume_other_point",
        R,
        {**RESUME, "tuning_search_space": space([point(learning_rate=0.01)])},
        "belongs to another trial (hyperparameters was",
        with_copy(lambda t: None),
    ),
    Case("resume_identity_missing", R, RESUME, "does not say which trial", with_copy(_drop_identity)),
    Case("resume_bad_model_params", R, RESUME, "does not fit this model or optimizer", with_copy(_shrink_params)),
    Case(
        "csv_garbage_line",
        R,
        RESUME,
        "line 4 is not a row of this table",
        with_copy(append_to("eval_measurements.csv", b"garbage\n")),
    ),
    Case(
        "csv_non_numeric_step",
        R,
        RESUME,
        "is not a row of this table",
        with_copy(append_to("measurements.csv", b"two,0,1.0\n")),
    ),
    Case(
        "csv_foreign_header",
        R,
        RESUME,
        "has no kronbench header",
        with_copy(replace_file("eval_measurements.csv", b"a,b\n1,2\n")),
    ),
    Case(
        "csv_not_utf8",
        R,
        RESUME,
        "is not UTF-8 text",
        with_copy(replace_file("eval_measurements.csv", b"global_step,preemption_count\n\xff\xfe\n")),
    ),
    Case(
        "trial_locked",
        R,
        RESUME,
        "is being run by another process (pid",
        with_copy(lambda t: None),
        hold=lambda c: exclusive_dir(str(c.tmp.joinpath(*TRIAL))),
    ),
    Case(
        "ckpt_random_bytes_subprocess",
        R,
        RESUME,
        "is not a readable kronbench checkpoint",
        trial_with(**{"checkpoint.pt": b"PK\x03\x04garbage"}),
        subprocess=True,
    ),
]


def other_campaign_manifest(c: Ctx) -> None:
    c.file(
        "exp/c/manifest.json", json.dumps({"version": 1, "identity": {"rng_seed": 0, "num_studies": 9}, "trials": {}})
    )


TUNING = [
    Case("t_missing_submissions", T, {"submissions": None}, "missing --submissions"),
    Case("t_missing_workloads", T, {"workloads": None}, "missing --workloads"),
    Case("t_missing_dir", T, {"experiment_dir": None}, "missing --experiment_dir"),
    Case("t_unknown_submission", T, {"submissions": "adamw9"}, "unknown submission 'adamw9'"),
    Case("t_unknown_workload", T, {"workloads": "cifar99"}, "unknown workload 'cifar99'"),
    Case("t_workload_twice", T, {"workloads": "mnist,mnist"}, "listed twice"),
    Case("t_submission_twice", T, {"submissions": "nadamw,nadamw"}, "two submissions are named 'nadamw'"),
    Case("t_studies_zero", T, {"num_studies": "0"}, "--num_studies=0 must be at least 1"),
    Case("t_trials_zero", T, {"num_tuning_trials": "0"}, "--num_tuning_trials=0 must be at least 1"),
    Case("t_self_many_trials", T, {"tuning_ruleset": "self", "num_tuning_trials": "2"}, "runs one trial per study"),
    Case("t_max_steps_zero", T, {"max_global_steps": "0"}, "--max_global_steps=0 must be at least 1"),
    Case("t_refine_negative", T, {"refine_time_to_target_sec": "-0.5"}, "--refine_time_to_target_sec=-0.5 must"),
    Case("t_seed_negative", T, {"rng_seed": "-1"}, "--rng_seed=-1 must lie in [0, 2**32 - 1]"),
    Case("t_seed_too_big", T, {"rng_seed": str(2**32)}, "must lie in [0, 2**32 - 1]"),
    Case("t_data_dir_missing", T, {"data_dir": lambda c: str(c.tmp / "nope")}, "is not a directory"),
    Case("t_name_dotdot", T, {"experiment_name": ".."}, "must be a plain folder name"),
    Case("t_name_with_sep", T, {"experiment_name": "a/b"}, "must be a plain folder name"),
    Case("t_dir_is_file", T, {"experiment_dir": text("x", "f")}, "is a file, not a directory"),
    Case(
        "t_dir_unwritable", T, {"experiment_dir": lambda c: str(c.tmp / "ro")}, "not writable", unwritable, skip=AS_ROOT
    ),
    Case("t_workers_zero", T, {"workers": "0"}, "--workers=0 must be at least 1"),
    Case("t_threads_zero", T, {"threads": "0"}, "--threads=0 must be at least 1"),
    Case("t_ray_no_cpus", T, {"executor": "ray", "cpus_per_trial": "0"}, "--cpus_per_trial must be > 0"),
    Case("t_framework_jax_no_port", T, {"framework": "jax", "workloads": "qm9_gnn"}, "has no JAX port yet"),
    Case("t_torch_file_under_jax", T, {"framework": "jax", "submissions": NADAMW}, "is written for pytorch, not jax"),
    Case("t_positional", T, {}, "unexpected arguments", positional=("extra",)),
    Case("t_too_few_points", T, {"num_tuning_trials": "6"}, "6 trials requested but the list holds 5 points"),
    Case("t_folder_without_space", T, {"submissions": sub_folder(None)}, "has no tuning_search_space.json"),
    Case(
        "t_space_unknown_key",
        T,
        {"submissions": sub_folder([point(learnin_rate=0.1)])},
        "learnin_rate, which the submission does not use",
    ),
    Case(
        "t_space_negative_lr",
        T,
        {"submissions": sub_folder([point(learning_rate=-1)])},
        "learning_rate=-1 is not a number in (0, inf]",
    ),
    Case("t_space_string_value", T, {"submissions": sub_folder([point(beta2="high")])}, "beta2='high'"),
    Case("t_manifest_not_json", T, {}, "manifest.json is not valid JSON", lambda c: c.file("exp/c/manifest.json", "{")),
    Case("t_manifest_list", T, {}, "is not a campaign manifest", lambda c: c.file("exp/c/manifest.json", "[]")),
    Case("t_manifest_other_campaign", T, {}, "holds a different campaign", other_campaign_manifest),
    Case(
        "t_campaign_locked",
        T,
        {},
        "is already running (pid",
        lambda c: c.file("exp/c/.keep", ""),
        hold=lambda c: exclusive_dir(str(c.tmp / "exp" / "c"), ".campaign.lock"),
    ),
    Case("t_unknown_flag", T, {"workers_count": "2"}, "Unknown command line flag 'workers_count'"),
    Case("t_bad_enum", T, {"executor": "slurm"}, "--executor=slurm"),
    Case("t_unknown_workload_subprocess", T, {"workloads": "cifar99"}, "unknown workload", subprocess=True),
]


def eval_log(content: bytes) -> Callable[[Ctx], None]:
    """A one-trial experiment of nadamw on mnist whose eval_measurements.csv is ``content``."""
    return lambda c: c.file("logs/nadamw/study_0/mnist_pytorch/trial_1/eval_measurements.csv", content)


GOOD_LOG = eval_log(b"global_step,score,validation/accuracy\n5,2.0,0.5\n10,3.0,0.99\n")
S = "scoring"
SCORING = [
    Case("s_no_directory", S, {"submission_directory": None}, "missing --submission_directory"),
    Case("s_directory_missing", S, {}, "is not a directory"),
    Case("s_empty_log", S, {}, "is empty", eval_log(b"")),
    Case("s_header_only", S, {}, "has a header but no rows", eval_log(b"global_step,score,validation/accuracy\n")),
    Case("s_no_metric", S, {}, "has no metric column", eval_log(b"global_step,score,validation/loss\n1,1.0,0.5\n")),
    Case("s_non_numeric", S, {}, "non-numeric score", eval_log(b"global_step,score,validation/accuracy\n1,x,0.5\n")),
    Case("s_not_utf8", S, {}, "is not UTF-8", eval_log(b"global_step,score,validation/accuracy\n1,1.0,0.5\xff\n")),
    Case(
        "s_steps_backwards",
        S,
        {},
        "steps going backwards",
        eval_log(b"global_step,score,validation/accuracy\n5,2.0,0.5\n3,3.0,0.6\n"),
    ),
    Case("s_unknown_baseline", S, {"baseline": "adamw"}, "--baseline=adamw is not among", GOOD_LOG),
    Case("s_unknown_version", S, {"benchmark_version": "0.7"}, "unknown --benchmark_version=0.7", GOOD_LOG),
    Case("s_bad_trial_selection", S, {"trial_selection": "fast"}, "--trial_selection=fast", GOOD_LOG),
    Case(
        "s_output_is_a_file",
        S,
        {"output_dir": lambda c: c.file("out.txt", "x")},
        "is a file, not a directory",
        GOOD_LOG,
    ),
    Case("s_output_is_source", S, {"output_dir": lambda c: str(c.tmp / "logs")}, "must differ", GOOD_LOG),
]

CASES = RUNNER + SEARCH_SPACES + CHECKPOINTS + TUNING + SCORING


@pytest.fixture(scope="module")
def shared_trial(tmp_path_factory) -> Path:
    """Warm the modules every case needs (forked children share them), then run one real two-step trial."""
    import runner.experiment  # noqa: F401
    import tuning.campaign  # noqa: F401
    from runner.loading import load_submission
    from workloads.registry import get_workload

    get_workload("mnist").check_data("")
    for name in ("nadamw", "shampoo"):
        load_submission(os.path.join(ROOT, "submissions", name, "submission.py"))
    root = tmp_path_factory.mktemp("shared")
    ctx = Ctx(root, root)
    outcome = run_main("runner", argv(Case("", R, {}, ""), ctx))
    assert outcome.returncode == 0, outcome.stderr
    return root.joinpath(*TRIAL)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case, shared_trial, tmp_path):
    if case.skip:
        pytest.skip(case.skip)
    ctx = Ctx(tmp_path, shared_trial)
    if case.setup is not None:
        case.setup(ctx)
    args = argv(case, ctx)
    run = run_subprocess if case.subprocess else run_main
    with case.hold(ctx) if case.hold else nullcontext():
        before = snapshot(tmp_path)
        outcome = run(case.module, args)
        after = snapshot(tmp_path)
    assert_refused(outcome, case.fragment)
    assert changed(before, after) == []
    assert not (tmp_path / "PWNED").exists()


def test_the_battery_is_large_enough():
    assert len([c for c in CASES if not c.skip]) >= 80  # bad optimizer options: tests/test_option_validation.py


def test_a_planted_pickle_checkpoint_is_refused_without_running_it(tmp_path):
    """The payload would create a file when unpickled; resume refuses the checkpoint and the file never appears."""
    trial = tmp_path.joinpath(*TRIAL)
    trial.mkdir(parents=True)
    marker = tmp_path / "PWNED"
    torch.save(Payload(str(marker)), trial / "checkpoint.pt")
    ctx = Ctx(tmp_path, tmp_path)
    outcome = run_subprocess(R, argv(Case("", R, RESUME, ""), ctx))
    assert_refused(outcome, f"{trial / 'checkpoint.pt'} is not a readable kronbench checkpoint")
    assert "--overwrite" in outcome.stderr
    assert not marker.exists()
    torch.load(trial / "checkpoint.pt", weights_only=False)  # what the runner did before: runs the payload
    assert marker.exists()


def test_two_runners_on_one_trial(tmp_path):
    """The second runner exits 2 naming the first one's pid; the first one's CSV keeps strictly increasing steps."""
    ctx = Ctx(tmp_path, tmp_path)
    cmd = [sys.executable, "-m", "runner", *argv(Case("", R, {"max_global_steps": "1000000"}, ""), ctx)]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    trial = tmp_path.joinpath(*TRIAL)
    try:
        deadline = time.monotonic() + 120
        while not ((trial / HOLDER).exists() and (trial / "eval_measurements.csv").exists()):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr and first.stderr.read()
            time.sleep(0.1)
        second = run_subprocess(R, argv(Case("", R, {**RESUME, "max_global_steps": "1000000"}, ""), ctx))
        assert_refused(second, f"is being run by another process (pid {first.pid} on")
        time.sleep(1.0)  # the first keeps training and logging
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with open(trial / "eval_measurements.csv") as f:
        steps = [int(line.split(",")[0]) for line in f.read().splitlines()[1:] if line]
    assert len(steps) >= 2 and all(a < b for a, b in zip(steps, steps[1:], strict=False)), steps


# Optimizer constructors: bad parameters are one exception at construction, one line (bad options:
# tests/test_option_validation.py, against both cores).
@pytest.mark.parametrize(
    "params, fragment",
    [
        ([torch.zeros(3, 3, dtype=torch.int64)], "dtype torch.int64"),
        ([torch.zeros(3, 3, dtype=torch.complex64)], "dtype torch.complex64"),
        (lambda p: [p, p], "is listed twice"),
    ],
    ids=["integer", "complex", "listed_twice"],
)
@pytest.mark.parametrize("cls", ["Shampoo", "NAdamW"])
def test_bad_parameters_fail_at_construction_in_one_line(cls, params, fragment):
    import precond

    duplicate = callable(params)  # torch itself warns about a duplicate before the optimizer refuses it
    params = params(torch.nn.Parameter(torch.zeros(3, 3))) if duplicate else params
    with pytest.warns(UserWarning) if duplicate else nullcontext(), pytest.raises(ValueError) as info:
        getattr(precond, cls)(params)
    assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)
