"""Every submission: the AlgoPerf API and its import rules, search spaces, parameter routing, a few steps on
every workload with every parameter kind, and (slow) the MNIST target."""

import ast
import json
import os

import pytest
import torch

from common import search_space
from compat import prng
from precond.registry import OPTIMIZERS
from runner.loading import REQUIRED, load_submission
from runner.loop import TrialConfig, train_once
from submissions import glue
from tests import submission_checks
from tests.cli_helpers import ROOT
from tests.coverage_workload import CoverageWorkload
from workloads.registry import WORKLOADS, get_workload

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

NAMES = list(OPTIMIZERS)
ALLOWED_IMPORTS = ("algoperf", "precond", "submissions.glue", "submissions.routing", "torch", "math")


def path(name, filename="submission.py"):
    return os.path.join(ROOT, "submissions", name, filename)


def first_point(name, **overrides):
    point = search_space.load(path(name, "tuning_search_space.json")).points(1)[0]
    return search_space.make_hyperparameters({**point, **overrides})


@pytest.mark.parametrize("name", NAMES)
def test_api_imports_and_search_space(name):
    module = load_submission(path(name)).module
    assert all(callable(getattr(module, fn)) for fn in REQUIRED)
    assert glue.TrainingHParams.resolve(None, module.SELF_TUNING_DEFAULTS) == module.SELF_TUNING_DEFAULTS
    search_space.load(path(name, "tuning_search_space.json")).points(5)  # five valid points
    tree = ast.parse(open(path(name)).read())
    allowed = (*ALLOWED_IMPORTS, f"submissions.{name}.options")  # its options, shared with submission_jax.py
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            full = node.module + "." + node.names[0].name if node.module == "submissions" else node.module
            assert full.startswith(allowed), f"{name} imports {full}"
        elif isinstance(node, ast.Import):
            assert all(a.name.startswith(allowed) for a in node.names)


OFFICIAL_SPACE = os.path.join(ROOT, "..", "shared", "data", "algoperf", "baseline_external_tuning_search_space.json")
ADAM_SCALE = tuple(n for n in OPTIMIZERS if n != "kradagrad_star")  # kradagrad_star departs (README)


@pytest.mark.skipif(not os.path.isfile(OFFICIAL_SPACE), reason="../shared/data/algoperf is not here")
@pytest.mark.parametrize("name", ADAM_SCALE)
def test_search_spaces_are_the_official_baseline_points(name):
    with open(OFFICIAL_SPACE) as f:
        official = json.load(f)
    with open(path(name, "tuning_search_space.json")) as f:
        assert json.load(f) == official


def test_the_five_points_are_distinct():
    points = search_space.load(path("nadamw", "tuning_search_space.json")).points(5)
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 5


@pytest.mark.parametrize("name", NAMES)
def test_search_space_fits_the_declared_hyperparameters(name):
    submission = load_submission(path(name))
    declared = submission.hyperparameters
    assert {"learning_rate", "weight_decay", "label_smoothing"} <= set(declared)
    assert ("precondition_frequency" in declared) == (name != "nadamw")  # KronConfig options only where used
    search_space.check(search_space.load(path(name, "tuning_search_space.json")), declared, name)


def test_huge_tables_go_to_adam_and_norms_are_not_preconditioned():
    workload = CoverageWorkload()
    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    module = load_submission(path("shampoo")).module
    optimizer = module.init_optimizer_state(workload, model, None, first_point("shampoo"), None)["optimizer"]
    adam = optimizer.optimizers["adam"]
    assert [p.shape for g in adam.param_groups for p in g["params"]] == [torch.Size([1_000_000, 2])]
    kron = optimizer.optimizers["kron"]
    unpreconditioned = [g for g in kron.param_groups if not g["precondition"]]
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in unpreconditioned[0]["params"]} == {
        "conv.bias",
        "batch_norm.weight",
        "batch_norm.bias",
        "wide.bias",
        "layer_norm.weight",
        "layer_norm.bias",
        "out.bias",
    }


# The three costliest workloads (a few steps cost 9-21 s each here) run the demo's pair by default, the rest of the
# submissions under `make test-slow`; every submission runs every other workload and the coverage model by default.
COSTLY_WORKLOADS = ("bible_mt", "flights_dlrm", "mri_unet")
DEFAULT_ON_COSTLY = ("nadamw", "shampoo")
FEW_STEPS_CASES = [
    pytest.param(name, w, marks=pytest.mark.slow)
    if w in COSTLY_WORKLOADS and name not in DEFAULT_ON_COSTLY
    else (name, w)
    for w in [*WORKLOADS, "coverage"]
    for name in NAMES
]


@pytest.mark.parametrize("name, workload_name", FEW_STEPS_CASES)
def test_a_few_steps_on_every_workload_are_finite(name, workload_name):
    """Preconditioning forced on from step 2 (hyperparameters override KronConfig fields of the same name)."""
    hp = first_point(name, precondition_frequency=2, start_preconditioning_step=2)
    submission_checks.assert_a_few_steps_are_finite(load_submission(path(name)), workload_name, hp)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "nadamw"])
def test_preconditioning_really_happens(name):
    workload = CoverageWorkload()
    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    module = load_submission(path(name)).module
    hp = first_point(name, precondition_frequency=2, start_preconditioning_step=2)
    state = module.init_optimizer_state(workload, model, None, hp, None)
    queue = workload._build_input_queue(prng.PRNGKey(0), "train", "", 8)
    for step in range(4):
        state, model, _ = module.update_params(
            workload, model, None, None, hp, next(queue), None, state, [], step, None
        )
    assert state["optimizer"].optimizers["kron"].counters["refreshes"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_first_point_reaches_the_mnist_target(name):
    """On three times the external budget: on this CPU only nadamw, shampoo and shampoo2 fit the 18 s budget
    itself (README, "Submissions on MNIST"); this checks that every submission gets there."""
    workload = get_workload("mnist")
    workload.max_allowed_runtime_sec = 3 * workload.max_allowed_runtime_sec
    result = train_once(
        workload,
        load_submission(path(name)),
        first_point(name),
        prng.PRNGKey(0),
        TrialConfig(workload_name="mnist", rng_seed=0, progress=False),
    )
    assert result.reached_validation, result.summary(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_self_tuning_defaults_reach_the_mnist_target(name):
    """The real self-tuning budget (1.5 x 18 s)."""
    result = train_once(
        get_workload("mnist"),
        load_submission(path(name)),
        None,
        prng.PRNGKey(0),
        TrialConfig(workload_name="mnist", tuning_ruleset="self", rng_seed=0, progress=False),
    )
    assert result.reached_validation, result.summary(name)
