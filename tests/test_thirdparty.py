"""The third-party submissions (submissions/thirdparty/*, every folder holding a submission.py) under the checks
kronbench's own pass (tests/test_submissions.py, tests/test_routing.py): the AlgoPerf API and import rules, search
spaces that fit the declared hyperparameters, a few finite steps on every workload, preconditioning that happens
where the routing says and nowhere else, the routing policy and its override, the one-line refusal when Meta's
library is absent, and (slow) the MNIST target through ``python -m runner``.

Meta's Distributed Shampoo is not on PyPI: its tests unpack the shipped source from
``../shared/data/reference/`` (``KRONBENCH_SHARED`` names another shared folder) and skip when it is absent.
"""

import ast
import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from common import search_space
from compat import prng
from runner.loading import REQUIRED, load_submission
from runner.loop import TrialConfig, train_once
from submissions import glue, routing
from tests import submission_checks
from tests.cli_helpers import ROOT, run_cli
from tests.coverage_workload import CoverageWorkload
from workloads.registry import WORKLOADS, get_workload

THIRDPARTY_DIR = os.path.join(ROOT, "submissions", "thirdparty")
NAMES = sorted(
    d for d in os.listdir(THIRDPARTY_DIR) if os.path.isfile(os.path.join(THIRDPARTY_DIR, d, "submission.py"))
)
ALLOWED_IMPORTS = ("algoperf", "submissions.glue", "submissions.routing", "submissions.thirdparty.", "torch", "math")
# Options that bring a library's first refresh forward to step 2, where it has them.
EARLY = dict(precondition_frequency=2, start_preconditioning_step=2)
# The recipe changes the lr every step, which HeavyBall warns about once (submissions/thirdparty/heavyball_setup.py).
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Learning rate changed between steps")]


@pytest.fixture(scope="session")
def meta_library(meta_source):
    """The folder holding Meta's ``distributed_shampoo`` (tests/conftest.py), put on sys.path."""
    sys.path.insert(0, meta_source)
    return meta_source


@pytest.fixture(params=NAMES)
def name(request):
    """Each third-party submission, with its library importable (Meta's from the shipped source)."""
    if request.param == "meta_shampoo":
        request.getfixturevalue("meta_library")
    return request.param


def path(name, filename="submission.py"):
    return os.path.join(THIRDPARTY_DIR, name, filename)


def point(name, early=False, **overrides):
    module = load_submission(path(name)).module
    values = search_space.load(path(name, "tuning_search_space.json")).points(1)[0]
    values.update({k: v for k, v in EARLY.items() if early and k in module.OPTIONS})
    return search_space.make_hyperparameters({**values, **overrides})


def test_the_list_is_the_folder():
    assert {"heavyball_soap", "heavyball_psgd_kron", "meta_shampoo"} <= set(NAMES)


def test_api_imports_and_search_space(name):
    module = load_submission(path(name)).module
    assert all(callable(getattr(module, fn)) for fn in REQUIRED)
    assert glue.TrainingHParams.resolve(None, module.SELF_TUNING_DEFAULTS) == module.SELF_TUNING_DEFAULTS
    search_space.load(path(name, "tuning_search_space.json")).points(5)  # five valid points
    library = {"meta_shampoo": "distributed_shampoo"}.get(name, "heavyball")
    for node in ast.walk(ast.parse(open(path(name)).read())):
        if isinstance(node, ast.ImportFrom):
            modules = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        assert all(m.startswith(ALLOWED_IMPORTS) for m in modules), f"{name} imports {modules}"
    assert library in sys.modules  # the library the adapter imported for it


def test_search_space_is_the_baseline_and_fits_the_declared_hyperparameters(name):
    submission = load_submission(path(name))
    declared = submission.hyperparameters
    assert {"learning_rate", "weight_decay", "label_smoothing", routing.POLICY_HYPERPARAMETER} <= set(declared)
    assert set(submission.module.OPTIONS) <= set(declared)  # the library's options, by its own names
    search_space.check(search_space.load(path(name, "tuning_search_space.json")), declared, name)
    with (
        open(path(name, "tuning_search_space.json")) as f,
        open(f"{ROOT}/submissions/nadamw/tuning_search_space.json") as g,
    ):
        assert json.load(f) == json.load(g)  # AlgoPerf's NAdamW baseline points (test_submissions checks those)


def test_an_undeclared_option_is_refused_when_the_space_is_loaded(name):
    declared = load_submission(path(name)).hyperparameters
    space = search_space.parse([{"learning_rate": 1e-3, "max_preconditioner_dimm": 10}], source="space.json")
    with pytest.raises(search_space.SearchSpaceError, match="max_preconditioner_dimm"):
        search_space.check(space, declared, name)


# Every parameter kind is in the coverage workload; the suite's models (2 to 33 s each here) run with the slow tests.
FAST_WORKLOADS = ("coverage", "mnist")


@pytest.mark.parametrize(
    "workload_name",
    [*FAST_WORKLOADS, *(pytest.param(w, marks=pytest.mark.slow) for w in WORKLOADS if w not in FAST_WORKLOADS)],
)
def test_a_few_steps_on_every_workload_are_finite(name, workload_name):
    submission_checks.assert_a_few_steps_are_finite(load_submission(path(name)), workload_name, point(name, True))


def full_factors(state) -> int:
    """How many Kronecker factors a library's optimizer state holds as full matrices: square tensors larger
    than 1 x 1 (HeavyBall SOAP's factors and bases), (shape, upper triangle) pairs (HeavyBall PSGD's triangular
    Q; a diagonal Q's shape is None) and state objects' ``factor_matrices`` (Meta's, packed as upper triangles),
    found in dicts and lists."""
    if hasattr(state, "factor_matrices"):
        return len(state.factor_matrices)
    if isinstance(state, torch.Tensor):
        return int(state.ndim >= 2 and state.shape[-1] == state.shape[-2] > 1)
    if isinstance(state, (list, tuple)):
        if len(state) == 2 and isinstance(state[0], (list, tuple)) and isinstance(state[1], torch.Tensor):
            return 1
        return sum(full_factors(s) for s in state)
    if isinstance(state, dict):
        return sum(full_factors(s) for s in state.values())
    return full_factors(vars(state)) if hasattr(state, "__dict__") else 0


def stepped(name, workload, hp, steps=4):
    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    module = load_submission(path(name)).module
    state = module.init_optimizer_state(workload, model, None, hp, None)
    queue = workload._build_input_queue(prng.PRNGKey(0), "train", "", 8)
    for step in range(steps):
        state, model, _ = module.update_params(
            workload, model, None, None, hp, next(queue), None, state, [], step, None
        )
    return model, state["optimizer"]


def test_preconditioning_happens_where_the_routing_says_and_nowhere_else(name):
    workload = CoverageWorkload()
    model, optimizer = stepped(name, workload, point(name, early=True))
    kron = optimizer.optimizers["kron"]
    policy = load_submission(path(name)).module.ROUTING
    for param_name, p in model.named_parameters():
        where = routing.route(param_name, workload.model_params_types.get(param_name), tuple(p.shape), policy)
        if where == routing.ADAM:
            assert any(p is q for g in optimizer.optimizers["adam"].param_groups for q in g["params"]), param_name
            continue
        found = full_factors(kron.state[p])
        assert (found > 0) == (where == routing.KRONECKER), (param_name, where, found)


def test_each_submission_states_its_policy_and_a_point_overrides_it(name):
    workload = get_workload("stdlib_lm")  # a 256 x 128 token table
    module = load_submission(path(name)).module
    assert module.HYPERPARAMETERS["precondition_embeddings"].default == module.ROUTING.precondition_embeddings
    for value in (True, False):
        model, optimizer = stepped(name, workload, point(name, early=True, precondition_embeddings=value), steps=3)
        assert (full_factors(optimizer.optimizers["kron"].state[model.token_embedding.weight]) > 0) is value


def test_meta_shampoo_absent_is_one_line_and_exit_2(tmp_path):
    env = {"PYTHONPATH": ROOT}  # not the unpacked library
    proc = run_cli(
        f"--submission_path={path('meta_shampoo')}",
        "--workload=mnist",
        f"--experiment_dir={tmp_path}",
        "--experiment_name=absent",
        env=env,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "distributed_shampoo" in lines[0], proc.stderr
    assert "git clone https://github.com/facebookresearch/optimizers" in lines[0]
    assert not os.listdir(tmp_path)  # nothing written


@pytest.mark.slow
@pytest.mark.parametrize("ruleset", ["external", "self"])
def test_reaches_the_mnist_target(name, ruleset):
    """The first point (external) and the self-tuning defaults, on three times the external budget, as
    tests/test_submissions.py runs kronbench's own: on this CPU the SOAP-family steps cost several times NAdamW's
    (docs/measurements.md, "Third-party submissions on MNIST", has the ``python -m runner`` runs)."""
    workload = get_workload("mnist")
    workload.max_allowed_runtime_sec = 3 * workload.max_allowed_runtime_sec
    result = train_once(
        workload,
        load_submission(path(name)),
        point(name) if ruleset == "external" else None,
        prng.PRNGKey(0),
        TrialConfig(workload_name="mnist", tuning_ruleset=ruleset, rng_seed=0, progress=False),
    )
    assert result.reached_validation, result.summary(name)


def test_campaigns_name_them_by_folder_and_the_makefile_lists_every_one():
    from tuning.plan import resolve_submissions

    entries = tuple(f"thirdparty/{n}" for n in NAMES)
    resolved = resolve_submissions(entries)
    assert [n for n, _ in resolved] == NAMES  # logs under the folder's own name
    assert [paths["pytorch"] for _, paths in resolved] == [path(n) for n in NAMES]
    with open(os.path.join(ROOT, "Makefile")) as f:
        line = next(x for x in f if x.startswith("THIRDPARTY_SUBMISSIONS :="))
    assert line.split(":=")[1].strip().split(",") == list(entries)  # in folder order


@pytest.mark.slow
def test_meta_shampoo_under_torchrun_takes_the_steps_of_one_process(meta_library, tmp_path):
    """Meta's ``DDPDistributedConfig`` on 2 gloo processes (each rank computes the roots of its share of the blocks
    and the updates are gathered): 20 steps with roots every 5 from step 5 end where one process ends. Epsilon 1e-3,
    as tests/test_runner_ddp.py explains for kronbench's Shampoo: with 1e-8 the young factors' inverse roots amplify
    the ranks' different summation order of the gradient."""
    point = {"learning_rate": 0.005, "precondition_frequency": 5, "start_preconditioning_step": 5, "epsilon": 1e-3}
    space = tmp_path / "space.json"
    space.write_text(json.dumps({k: {"feasible_points": [v]} for k, v in point.items()}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, meta_library]), "OMP_NUM_THREADS": "1"}
    final = {}
    for nproc in (1, 2):
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        args = [f"--submission_path={path('meta_shampoo')}", "--workload=mnist", f"--tuning_search_space={space}"]
        args += [f"--experiment_dir={tmp_path}", f"--experiment_name=p{nproc}", "--rng_seed=0", "--progress=off"]
        proc = subprocess.run(
            [*launcher, "-m", "runner", *args, "--max_global_steps=20"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        (csv_path,) = tmp_path.glob(f"p{nproc}/mnist_pytorch/trial_1/eval_measurements.csv")
        with open(csv_path) as f:
            final[nproc] = list(csv.DictReader(f))[-1]
    assert final[1]["global_step"] == final[2]["global_step"] == "20"
    for metric in ("train/loss", "validation/loss"):
        assert float(final[2][metric]) == pytest.approx(float(final[1][metric]), rel=1e-4), metric
