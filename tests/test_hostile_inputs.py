"""More rows of the bad-input battery (tests/test_bad_inputs.py's machinery), from issue 27: eval hooks, module
aliases, experiment paths the file system refuses, search spaces that crashed the JSON reader, crafted JAX (and
torch) checkpoints, hand-edited campaign manifests, a batch that does not split over --procs_per_trial, and eval
logs scoring must not trust. Each row: exit 2, one ``error:`` line naming the problem, no traceback, and every
file as it was.

Hooks that fail once a trial runs (the factory's product, a hook that raises or returns a non-number) have their
own tests at the end: one line and exit 2 too, the failure recorded in the trial's meta data.
"""

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.bad_inputs import assert_refused, changed, run_main, run_subprocess, snapshot
from tests.cli_helpers import ROOT
from tests.test_bad_inputs import (  # noqa: F401  (shared_trial: the fixture, used by name)
    RESUME,
    TRIAL,
    Case,
    Ctx,
    R,
    S,
    T,
    argv,
    eval_log,
    point,
    shared_trial,
    space,
    text,
    with_copy,
)

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

HOOKS = "hookmods"  # a folder of hook modules, put on sys.path for the run (the runner imports hooks by name)


def hook_module(name: str, body: str) -> Callable[[Ctx], None]:
    return lambda c: c.file(f"{HOOKS}/{name}.py", body)


DEEP = "[" * 100_000 + "]" * 100_000  # past any recursion limit
HUGE = 10**400  # an integer, beyond float's range
LONG_NAME = "n" * 300
SURROGATE = "a\udcff"  # the byte 0xff of a command line, as Python decodes it


def deep_sub(content: str) -> Callable[[Ctx], str]:
    """A submission folder (nadamw's functions) whose tuning_search_space.json is ``content``."""

    def make(c: Ctx) -> str:
        c.file("mysub/submission.py", "from submissions.nadamw.submission import *\n")
        c.file("mysub/tuning_search_space.json", content)
        return str(c.tmp / "mysub")

    return make


HOOK_ROWS = [
    Case("hook_superscript_every", R, {"eval_hooks": "os:getcwd@\u00b2"}, "after @ must be a whole number of evals"),
    Case("hook_relative_name", R, {"eval_hooks": "..foo:f"}, "'..foo:f' is not of the form package.module:factory"),
    Case(
        "hook_module_raises",
        R,
        {"eval_hooks": "kb_hook_raises:make"},
        "cannot be loaded (RuntimeError: boom at import)",
        hook_module("kb_hook_raises", "raise RuntimeError('boom at import')\n"),
    ),
    Case(
        "hook_module_syntax_error",
        R,
        {"eval_hooks": "kb_hook_syntax:make"},
        "cannot be loaded (SyntaxError",
        hook_module("kb_hook_syntax", "def make(:\n"),
    ),
    Case("hook_factory_signature", R, {"eval_hooks": "os:getcwd"}, "has the signature () but is called as"),
    Case(
        "alias_hides_a_module",
        R,
        {"module_aliases": "workloads.mnist=json"},
        "would hide the importable module 'workloads'",
    ),
]

PROC = None if os.path.isdir("/proc/self") else "needs Linux's /proc"
PATH_ROWS = [  # the runner's and the campaign's, each
    Case(f"{prefix}{name}", module, {flag: value}, fragment, skip=skip)
    for module, prefix in ((R, ""), (T, "t_"))
    for name, flag, value, fragment, skip in (
        ("experiment_dir_in_proc", "experiment_dir", "/proc/kronbench_x", "cannot create /proc/kronbench_x", PROC),
        ("name_too_long", "experiment_name", LONG_NAME, "is 300 bytes, over the file system's 255", None),
        ("name_not_utf8", "experiment_name", SURROGATE, "is not UTF-8 text", None),
    )
]

SPACE_ROWS = [
    Case("space_deep", R, {"tuning_search_space": text(DEEP)}, "nests arrays or objects too deeply"),
    Case(
        "space_deep_value",
        R,
        {"tuning_search_space": text('{"learning_rate": {"feasible_points": ' + DEEP + "}}")},
        "nests arrays or objects too deeply",
    ),
    Case(
        "space_5000_digits",
        R,
        {"tuning_search_space": text('[{"learning_rate": ' + "1" * 5000 + "}]")},
        "holds an integer of more than",
    ),
    Case(
        "space_huge_value",
        R,
        {"tuning_search_space": space([point(learning_rate=HUGE)])},
        "learning_rate=1000000000000000000000000000000000000000...(401 characters) is not a number",
    ),
    Case(
        "space_huge_max",
        R,
        {"tuning_search_space": space({"learning_rate": {"min": 0.1, "max": HUGE, "scaling": "log"}})},
        "learning_rate.max=1000000000000000000000000000000000000000...(401 characters) is not a finite number",
    ),
    Case(
        "space_huge_min",
        R,
        {"tuning_search_space": space({"learning_rate": {"min": -HUGE, "max": 1, "scaling": "linear"}})},
        "learning_rate.min=-100000000000000000000000000000000000000...(402 characters) is not a finite number",
    ),
    Case("t_space_deep", T, {"submissions": deep_sub(DEEP)}, "nests arrays or objects too deeply"),
    Case(
        "t_space_huge_value",
        T,
        {"submissions": deep_sub(json.dumps([point(learning_rate=HUGE)]))},
        "(401 characters) is not a number",
    ),
]


def edit_npz(**changes) -> Callable[[Path], None]:
    """Rewrite a JAX trial's checkpoint.npz with ``changes`` to its plain fields (``plain=...`` replaces the
    whole JSON record, ``extra={key: array}`` adds entries)."""

    def change(trial: Path) -> None:
        file = trial / "checkpoint.npz"
        with np.load(file, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        record = json.loads(str(arrays["plain"]))
        extra = changes.pop("extra", {})
        whole = changes.pop("plain", None)
        record.update(changes)
        arrays["plain"] = np.array(json.dumps(record if whole is None else whole))
        np.savez(file, **arrays, **extra)

    return change


def edit_torch(**changes) -> Callable[[Path], None]:
    def change(trial: Path) -> None:
        blob = torch.load(trial / "checkpoint.pt", weights_only=True)
        blob.update(changes)
        torch.save(blob, trial / "checkpoint.pt")

    return change


SLOW = pytest.mark.slow
JAX_RESUME = {
    **RESUME,
    "framework": "jax",
    "submission_path": os.path.join(ROOT, "submissions", "nadamw", "submission_jax.py"),
}


def jax_case(name: str, change, fragment: str, slow: bool = True) -> Case:
    """A resume of the shared JAX trial after ``change`` to its checkpoint (a real subprocess: a fork of a test
    process that may already run XLA's threads is not safe; ~20 s each, so all but one are slow tests)."""

    def setup(c: Ctx) -> None:
        target = c.tmp.joinpath(*TRIAL[:2], "mnist_jax", "trial_1")
        shutil.copytree(c.trial.parents[1] / "mnist_jax" / "trial_1", target)
        change(target)

    return pytest.param(Case(name, R, JAX_RESUME, fragment, setup, subprocess=True), marks=SLOW if slow else ())


CHECKPOINT_ROWS = [
    jax_case(
        "jax_ckpt_plain_string",  # a string holding every key's name passed the old ``key in plain`` check
        edit_npz(plain="identity train_state eval_results global_step preemption_count"),
        "is not a kronbench JAX checkpoint (no identity",
    ),
    jax_case("jax_ckpt_eval_results_number", edit_npz(eval_results=[5]), "eval_results[0]=5 is not a (step, results)"),
    jax_case(
        "jax_ckpt_foreign_leaf_key",
        edit_npz(extra={"model_params/abc": np.zeros(2)}),
        "(an entry 'model_params/abc')",
    ),
    jax_case("jax_ckpt_step_string", edit_npz(global_step="abc"), "global_step='abc' is not a whole number"),
    jax_case("jax_ckpt_step_negative", edit_npz(global_step=-5), "global_step=-5 is not a whole number", slow=False),
    jax_case("jax_ckpt_train_state_list", edit_npz(train_state=[]), "train_state is a list, not a mapping"),
    Case(
        "ckpt_train_state_list",
        R,
        RESUME,
        "train_state is a list, not a mapping",
        with_copy(edit_torch(train_state=[])),
    ),
    Case(
        "ckpt_step_negative",
        R,
        RESUME,
        "global_step=-5 is not a whole number",
        with_copy(edit_torch(global_step=-5)),
    ),
]


def manifest_with(entry) -> Callable[[Ctx], None]:
    """The campaign's manifest (the identity the tuning defaults give) holding ``entry`` for its one trial."""

    def make(c: Ctx) -> None:
        from tuning.plan import CampaignConfig

        cfg = CampaignConfig(("nadamw",), ("mnist",), str(c.tmp / "exp"), "c", rng_seed=0, max_global_steps=2)
        trials = {"nadamw/study_0/mnist_pytorch/trial_1": entry}
        c.file("exp/c/manifest.json", json.dumps({"version": 1, "identity": cfg.identity(), "trials": trials}))

    return make


TUNING_ROWS = [
    Case(
        "t_manifest_entry_without_attempts",
        T,
        {},
        "manifest.json: trial 'nadamw/study_0/mnist_pytorch/trial_1' has attempts=None",
        manifest_with({"status": "failed"}),
    ),
    Case(
        "t_manifest_entry_list",
        T,
        {},
        "trial 'nadamw/study_0/mnist_pytorch/trial_1' is a list, not an object",
        manifest_with(["done"]),
    ),
    Case(
        "t_batch_does_not_split",
        T,
        {"procs_per_trial": "3"},
        "global batch size 128 for mnist does not split over 3 processes; run with a --procs_per_trial",
    ),
]

HEADER = b"global_step,score,validation/accuracy\n"
SCORING_ROWS = [
    Case(
        "s_step_huge",
        S,
        {},
        "has global_step 1e+300 at line 3, not a whole number",
        eval_log(HEADER + b"5,2,0.5\n1e300,3,0.9\n"),
    ),
    Case("s_negative_time", S, {}, "has a negative time -1 at line 2", eval_log(HEADER + b"5,-1.0,0.5\n10,3,0.99\n")),
    Case(
        "s_duplicate_step",
        S,
        {},
        "has global_step 5 twice, at lines 2 and 3",
        eval_log(HEADER + b"5,2,0.5\n5,3,0.99\n"),
    ),
    Case("s_fractional_step", S, {}, "has global_step 5.5 at line 2", eval_log(HEADER + b"5.5,2,0.5\n10,3,0.99\n")),
]

CASES = HOOK_ROWS + PATH_ROWS + SPACE_ROWS + CHECKPOINT_ROWS + TUNING_ROWS + SCORING_ROWS


@pytest.fixture(scope="module")
def shared_jax_trial(shared_trial: Path) -> Path:  # noqa: F811  (the imported fixture, by name)
    """A finished two-step JAX trial of nadamw on mnist beside the shared PyTorch one; returns the latter."""
    root = shared_trial.parents[3]  # the shared trial is root/exp/e/mnist_pytorch/trial_1
    fresh = {k: v for k, v in JAX_RESUME.items() if k != "resume_last_run"}
    args = argv(Case("", R, fresh, ""), Ctx(root, root))
    outcome = run_subprocess(R, args)
    assert outcome.returncode == 0, outcome.stderr
    return shared_trial


def _id(case) -> str:
    return (case.values[0] if hasattr(case, "values") else case).id


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_hostile_input_is_one_line_and_changes_nothing(case, request, tmp_path, monkeypatch):
    if case.skip:
        pytest.skip(case.skip)
    monkeypatch.syspath_prepend(str(tmp_path / HOOKS))  # inherited by the forked run
    fixture = "shared_jax_trial" if case.id.startswith("jax_") else "shared_trial"
    ctx = Ctx(tmp_path, request.getfixturevalue(fixture))
    if case.setup is not None:
        case.setup(ctx)
    args = argv(case, ctx)
    run = run_subprocess if case.subprocess else run_main
    before = snapshot(tmp_path)
    outcome = run(case.module, args)
    assert_refused(outcome, case.fragment)
    assert changed(before, snapshot(tmp_path)) == []


def run_with_hook(tmp_path: Path, monkeypatch, body: str):
    """A fresh two-step trial with the hook ``kb_hook:make`` defined by ``body``: (outcome, trial directory)."""
    (tmp_path / HOOKS).mkdir()
    (tmp_path / HOOKS / "kb_hook.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path / HOOKS))
    outcome = run_main(R, argv(Case("", R, {"eval_hooks": "kb_hook:make"}, ""), Ctx(tmp_path, tmp_path)))
    return outcome, tmp_path.joinpath(*TRIAL)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("def make(workload, data_rng, data_dir):\n    return 3\n", "returned int, not a callable hook"),
        (
            "def make(workload, data_rng, data_dir):\n    return lambda x: {}\n",
            "returned a hook that has the signature (x)",
        ),
        (
            "def make(workload, data_rng, data_dir):\n    raise ValueError('nope')\n",
            "failed to start (ValueError: nope)",
        ),
    ],
    ids=["not_callable", "wrong_signature", "factory_raises"],
)
def test_a_bad_hook_stops_the_trial_before_it_writes_a_file(tmp_path, monkeypatch, body, fragment):
    outcome, trial = run_with_hook(tmp_path, monkeypatch, body)
    assert_refused(outcome, f"eval hook 'kb_hook:make' {fragment}")
    written = [p for p in (tmp_path / "exp").rglob("*") if p.is_file()]
    assert written == []  # the trial's folder was made (and locked), nothing in it


@pytest.mark.parametrize(
    "returns, fragment",
    [
        ("1 / 0", "at step 1 raised ZeroDivisionError: division by zero"),
        ("{'kb/x': 'abc'}", "at step 1 returned 'kb/x': 'abc', not a number"),
        ("[1.0]", "at step 1 returned list, not a mapping"),
    ],
    ids=["raises", "string_value", "not_a_mapping"],
)
def test_a_hook_failing_mid_trial_ends_it_with_a_recorded_error(tmp_path, monkeypatch, returns, fragment):
    body = f"def make(workload, data_rng, data_dir):\n    return lambda *args: {returns}\n"
    outcome, trial = run_with_hook(tmp_path, monkeypatch, body)
    assert_refused(outcome, f"eval hook 'kb_hook:make' {fragment}")
    meta = json.loads((trial / "meta_data_0.json").read_text())
    assert meta["error"]["step"] == 1 and fragment in meta["error"]["reason"]
    rows = (trial / "eval_measurements.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("1,")  # the eval's row is kept; the trial stopped there
