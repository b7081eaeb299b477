"""Parameter routing (submissions/routing.py): each AlgoPerf parameter type goes where submissions/README.md says,
on every suite workload's real model, checked parameter by parameter by name; and the policy is a per-submission
constant that a search-space point may override, a bad value refused in one line."""

import pytest

from common import search_space
from compat import prng
from precond.registry import VARIANTS
from runner.loading import load_submission
from submissions import glue, routing
from tests.cli_helpers import ROOT
from tests.coverage_workload import CoverageWorkload
from workloads.registry import WORKLOADS, get_workload

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

K, U, A = routing.KRONECKER, routing.UNPRECONDITIONED, routing.ADAM
# submissions/README.md "Parameter routing", written out by hand: type -> (embeddings preconditioned, not).
DOCUMENTED = {
    "WEIGHT": (K, K),
    "CONV_WEIGHT": (K, K),
    "ATTENTION_Q": (K, K),
    "ATTENTION_K": (K, K),
    "ATTENTION_V": (K, K),
    "ATTENTION_OUT": (K, K),
    "ATTENTION_QKV": (K, K),
    "ATTENTION_KV": (K, K),
    "EMBEDDING": (K, U),
    "BIAS": (U, U),
    "ATTENTION_BIAS": (U, U),
    "BATCH_NORM_SCALE": (U, U),
    "BATCH_NORM_BIAS": (U, U),
    "LAYER_NORM_SCALE": (U, U),
    "LAYER_NORM_BIAS": (U, U),
}
KRON_SUBMISSIONS = VARIANTS


# Every embedding table of the suite, by name (the rest: 1-D parameters are norms and biases, the others weights).
EMBEDDINGS = {
    "mnist": set(),
    "fashion_resnet": set(),
    "fashion_vit": {"pos_embedding"},
    "stdlib_lm": {"token_embedding.weight", "pos_embedding"},
    "flights_dlrm": {"embedding.weight"},
    "qm9_gnn": {"node_embedding.weight"},  # edge_embedding is a linear map of distance features: a weight
    "mri_unet": set(),
    "bible_mt": {"token_embedding.weight", "pos_embedding"},
    "espeak_asr": {"pos_embedding"},
}


def test_documented_table_covers_every_algoperf_type():
    from algoperf import spec

    assert set(DOCUMENTED) == {t.name for t in spec.ParameterType}
    for type_name, (with_emb, without_emb) in DOCUMENTED.items():
        for param_type in (getattr(spec.ParameterType, type_name), type_name):  # the enum or its name
            assert routing.route("p", param_type, (64, 32), routing.Policy(True)) == with_emb
            assert routing.route("p", param_type, (64, 32), routing.Policy(False)) == without_emb


def test_huge_dimensions_go_to_adam_whatever_their_type():
    for type_name in DOCUMENTED:
        assert routing.route("t", type_name, (1_000_000, 2), routing.Policy()) == A
        assert routing.route("t", type_name, (999_999, 2), routing.Policy(False)) != A
    assert routing.route("t", "WEIGHT", (10, 50), routing.Policy(adam_dim_threshold=50)) == A
    assert routing.route("untyped", None, (10, 50), routing.Policy()) == K  # a workload without types: weights


@pytest.mark.parametrize("workload_name", list(WORKLOADS))
@pytest.mark.parametrize("precondition_embeddings", [True, False])
def test_every_parameter_of_every_suite_workload_is_routed_as_documented(workload_name, precondition_embeddings):
    workload = get_workload(workload_name)
    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    types = workload.model_params_types
    policy = routing.Policy(precondition_embeddings)
    groups, adam = glue.route_parameters(model, types, policy)
    got = {n: (K if g.get("precondition", True) else U) for g in groups for n, _ in g["params"]}
    got.update({n: A for n, _ in adam})
    names = [n for n, _ in model.named_parameters()]
    assert sorted(got) == sorted(names)  # every parameter exactly once
    for name, p in model.named_parameters():
        expected = DOCUMENTED[types[name].name][0 if precondition_embeddings else 1]
        assert got[name] == expected, f"{workload_name}: {name} ({types[name].name})"
        if name in EMBEDDINGS[workload_name]:  # by name, from the table above
            assert got[name] == (K if precondition_embeddings else U), name
        elif p.ndim == 1:
            assert got[name] == U, name
        else:
            assert got[name] == K, name
    assert {n for n, t in types.items() if t.name == "EMBEDDING"} == EMBEDDINGS[workload_name]
    assert not adam  # no suite table reaches a million rows


def test_the_embedding_workloads_have_what_the_policy_is_about():
    """flights_dlrm and stdlib_lm (the policy's measurements) have embedding tables; the policy moves exactly
    those."""
    for workload_name in ("flights_dlrm", "stdlib_lm"):
        workload = get_workload(workload_name)
        model, _ = workload.init_model_fn(prng.PRNGKey(0))
        kron = {
            value: {
                n
                for n, _ in glue.route_parameters(model, workload.model_params_types, routing.Policy(value))[0][0][
                    "params"
                ]
            }
            for value in (True, False)
        }
        assert kron[True] - kron[False] == EMBEDDINGS[workload_name]


def _optimizer(name, workload, model, **point):
    module = load_submission(f"{ROOT}/submissions/{name}/submission.py").module
    hp = search_space.make_hyperparameters(point) if point else None
    return module, module.init_optimizer_state(workload, model, None, hp, None)["optimizer"]


@pytest.mark.parametrize("name", KRON_SUBMISSIONS)
def test_each_submission_states_its_policy_and_a_point_overrides_it(name):
    workload = get_workload("flights_dlrm")
    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    table = model.embedding.weight

    def preconditioned(optimizer):
        return next(
            g["precondition"] for g in optimizer.optimizers["kron"].param_groups if any(p is table for p in g["params"])
        )

    module, default = _optimizer(name, workload, model)  # self-tuning: the submission's own policy
    assert isinstance(module.ROUTING, routing.Policy)
    assert preconditioned(default) == module.ROUTING.precondition_embeddings
    assert module.HYPERPARAMETERS["precondition_embeddings"].default == module.ROUTING.precondition_embeddings
    for value in (True, False):
        _, optimizer = _optimizer(name, workload, model, learning_rate=1e-3, precondition_embeddings=value)
        assert preconditioned(optimizer) is value


def test_a_bad_policy_value_is_refused_in_one_line():
    declared = load_submission(f"{ROOT}/submissions/shampoo/submission.py").hyperparameters
    space = search_space.parse([{"learning_rate": 1e-3, "precondition_embeddings": "yes"}], source="space.json")
    with pytest.raises(search_space.SearchSpaceError, match=r"precondition_embeddings='yes' is not a bool") as e:
        search_space.check(space, declared, "shampoo")
    assert "\n" not in str(e.value)
    with pytest.raises(routing.RoutingError, match="is not a boolean; write true or false"):
        routing.Policy().with_overrides(search_space.make_hyperparameters({"precondition_embeddings": 1}))
    nadamw = load_submission(f"{ROOT}/submissions/nadamw/submission.py").hyperparameters
    assert "precondition_embeddings" not in nadamw  # a submission without routing does not take it


def test_coverage_workload_huge_table_still_goes_to_adam_under_either_policy():
    workload = CoverageWorkload()
    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    for value in (True, False):
        _, adam = glue.route_parameters(model, workload.model_params_types, routing.Policy(value))
        assert [n for n, _ in adam] == ["embed.weight"]
