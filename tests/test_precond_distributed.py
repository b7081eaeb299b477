"""The Kronecker engine sharded over 2 real gloo processes against the single-process run: same parameters after 50
steps for every variant, each rank computing about half the blocks, checkpoints moving between world sizes."""

import io
import math
import os
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import precond
from precond import distributed
from precond import matrix_functions as mf

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

STEPS, SAVE_AT = 50, 20
COMMON = {"precondition_frequency": 5, "max_preconditioner_dim": 12}
CASES = {
    "shampoo": (precond.Shampoo, {}),
    "shampoo_newton_fp64": (precond.Shampoo, {"root_method": "newton", "factor_dtype": "float64"}),
    "shampoo2_online": (precond.Shampoo2, {"online": True}),
    "kradagrad_star": (precond.KrADagradStar, {}),
    "kradagrad_grafted": (precond.KrADagrad, {"grafting": "adam", "betas": (0.9, 0.999)}),
    "eshampoo_qr": (precond.EShampoo, {"basis_method": "qr"}),
    "soap": (precond.SOAP, {}),
}
# Matrices split into several block shapes (max dim 12), a stacked pair, an order-3 block, vectors, and one matrix
# in an unpreconditioned group with its own learning rate.
SHAPES = [(24, 20), (24, 20), (16, 24), (8, 4, 3, 3), (6, 5, 4), (10, 10), (20,), (24,)]
UNPRECONDITIONED = [(7, 9)]


def _initial(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen) * 0.3 for s in SHAPES + UNPRECONDITIONED]


def _targets():
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(s, generator=gen) for s in SHAPES + UNPRECONDITIONED]


def _loss(params, targets, step):
    """Least squares per parameter on a fresh batch each step (the same on every rank)."""
    gen = torch.Generator().manual_seed(100 + step)
    total = 0.0
    for p, w in zip(params, targets, strict=True):
        if p.dim() == 1:
            total = total + ((p - w) ** 2).sum()
            continue
        x = torch.randn(16, p[0].numel(), generator=gen)
        total = total + ((x @ (p.reshape(len(p), -1) - w.reshape(len(w), -1)).T) ** 2).mean()
    return total


def _train(name, params, steps, first_step=0, state=None, process_group=None):
    """(parameters, optimizer, preconditioned blocks this rank accumulated) after ``steps`` steps."""
    cls, options = CASES[name]
    params = [p.detach().clone().requires_grad_() for p in params]
    groups = [{"params": params[: len(SHAPES)]}, {"params": params[len(SHAPES) :], "precondition": False, "lr": 3e-3}]
    opt = cls(groups, lr=1e-2, weight_decay=1e-3, process_group=process_group, **COMMON, **options)
    if state is not None:
        opt.load_state_dict(state)
    accumulated = [0]
    accumulate = opt.variant.accumulate

    def counting(state, g, step):
        accumulated[0] += g.shape[0]
        accumulate(state, g, step)

    opt.variant.accumulate = counting
    targets = _targets()
    for t in range(first_step, first_step + steps):
        opt.zero_grad()
        _loss(params, targets, t).backward()
        opt.step()
    return [p.detach().clone() for p in params], opt, accumulated[0]


def _roundtrip(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _worker(rank, world, tmp):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world)
    results = {}
    for name in CASES:
        ref_mid, ref_opt, _ = _train(name, _initial(), SAVE_AT, process_group=False)
        ref_state = _roundtrip(ref_opt.state_dict())
        ref_end, ref_opt, _ = _train(name, ref_mid, STEPS - SAVE_AT, SAVE_AT, ref_state, process_group=False)
        sharded, sharded_opt, accumulated = _train(name, _initial(), STEPS)
        # a 2-process checkpoint continued on 1 process, and a 1-process checkpoint continued on 2
        mid, mid_opt, _ = _train(name, _initial(), SAVE_AT)
        local_state = _roundtrip(mid_opt.state_dict())  # as AlgoPerf's runner takes it on rank 0: local, no hang
        with distributed.gathering_state():
            mid_state = _roundtrip(mid_opt.state_dict())
        from_two = None
        if rank == 0:
            from_two = _train(name, mid, STEPS - SAVE_AT, SAVE_AT, mid_state, process_group=False)[0]
        from_one = _train(name, ref_mid, STEPS - SAVE_AT, SAVE_AT, ref_state)[0]
        results[name] = {
            "reference": ref_end,
            "reference_counters": ref_opt.counters,
            "sharded": sharded,
            "counters": sharded_opt.counters,
            "accumulated": accumulated,
            "from_two": from_two,
            "from_one": from_one,
            "local_groups": [g is not None for g in local_state["kron"]["groups"]],
            "partial_load_warning": None,
        }
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _train(name, _initial(), 0, 0, local_state, process_group=False)
        results[name]["partial_load_warning"] = [str(w.message) for w in caught]
    results["refresh_failure"] = _refresh_failure(rank)
    torch.save(results, os.path.join(tmp, f"rank{rank}.pt"))
    dist.destroy_process_group()


def _refresh_failure(rank):
    """A refresh that fails for good on rank 0 must stop every rank at that step, not leave rank 1 waiting."""
    params = [p.requires_grad_() for p in _initial()]
    opt = precond.Shampoo(params, max_consecutive_failures=1, **COMMON)
    if rank == 0:

        def failing(state, step, counters):
            raise mf.MatrixFunctionError("eigh did not converge (forced)")

        opt.variant.refresh = failing
    for t in range(COMMON["precondition_frequency"]):
        opt.zero_grad()
        _loss(params, _targets(), t).backward()
        try:
            opt.step()
        except (mf.MatrixFunctionError, RuntimeError) as e:
            return {"step": t + 1, "error": f"{type(e).__name__}: {e}"}
    return None


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("dist"))
    mp.spawn(_worker, args=(2, tmp), nprocs=2, join=True)
    return [torch.load(os.path.join(tmp, f"rank{r}.pt"), weights_only=True) for r in range(2)]


def _relative(a, b):
    return float((a - b).abs().max() / b.abs().max())


def _assert_same(params, reference, what):
    for i, (p, r) in enumerate(zip(params, reference, strict=True)):
        assert _relative(p, r) <= 1e-6, f"{what}: parameter {i} differs by {_relative(p, r):.2e} relative"


def _preconditioned_blocks():
    opt = precond.Shampoo(_initial()[: len(SHAPES)], **COMMON)
    return sum(len(bg.members) for bg in opt._groups if bg.preconditioned)


@pytest.mark.parametrize("name", list(CASES))
def test_two_ranks_match_one_process(two_ranks, name):
    reference = two_ranks[0][name]["reference"]
    moved = [torch.linalg.vector_norm(a - b) for a, b in zip(reference, _initial(), strict=True)]
    assert min(moved) > 1e-3  # every parameter trained
    for rank, results in enumerate(two_ranks):
        _assert_same(results[name]["sharded"], reference, f"{name} rank {rank}")
        assert results[name]["counters"] == results[name]["reference_counters"]  # summed over ranks
    assert two_ranks[0][name]["reference_counters"]["refreshes"] > 0


@pytest.mark.parametrize("name", list(CASES))
def test_each_rank_computes_about_half_the_blocks(two_ranks, name):
    per_rank = [results[name]["accumulated"] for results in two_ranks]
    total = STEPS * _preconditioned_blocks()
    assert sum(per_rank) == total  # every block accumulated by exactly one rank each step
    assert all(0.35 * total <= n <= 0.65 * total for n in per_rank), per_rank


@pytest.mark.parametrize("name", list(CASES))
def test_checkpoints_move_between_world_sizes(two_ranks, name):
    reference = two_ranks[0][name]["reference"]
    _assert_same(two_ranks[0][name]["from_two"], reference, f"{name}: 2-process checkpoint on 1 process")
    for rank, results in enumerate(two_ranks):
        _assert_same(results[name]["from_one"], reference, f"{name}: 1-process checkpoint on rank {rank}")


@pytest.mark.parametrize("name", list(CASES))
def test_a_local_state_dict_holds_the_ranks_own_groups_and_loads_with_a_warning(two_ranks, name):
    """Outside gathering_state() (AlgoPerf's runner saves on rank 0 alone), state_dict is local: no collective to
    hang on; loading such a checkpoint restarts the missing groups' preconditioners and says so."""
    owned = [results[name]["local_groups"] for results in two_ranks]
    assert not any(a and b for a, b in zip(*owned, strict=True))  # no group whole on both ranks
    assert any(a or b for a, b in zip(*owned, strict=True))  # single-block groups are whole on their owner
    assert not all(a or b for a, b in zip(*owned, strict=True))  # a group split over the ranks is on neither
    for results in two_ranks:
        missing = owned[0].count(False) if results is two_ranks[0] else owned[1].count(False)
        (message,) = results[name]["partial_load_warning"]
        assert f"lacks {missing} of {len(owned[0])} block groups" in message


def test_a_refresh_failure_on_one_rank_stops_every_rank(two_ranks):
    first, second = (results["refresh_failure"] for results in two_ranks)
    assert first["step"] == second["step"] == COMMON["precondition_frequency"]  # the first refresh step
    assert first["error"].startswith("MatrixFunctionError: 1 refreshes in a row failed")
    assert second["error"].startswith("RuntimeError: a preconditioner refresh failed on 1 other rank(s)")


def test_balance_is_longest_processing_time_first():
    # largest first to the least-loaded rank: 7 -> r0, 5 -> r1, 4 -> r1 (5 < 7), 3 -> r0 (7 < 9), 1 -> r1 (9 < 10)
    assert distributed.balance([3, 5, 1, 7, 4], 2) == (0, 1, 1, 0, 1)
    assert distributed.balance([4, 4, 2, 2], 2) == (0, 1, 0, 1)  # ties: the lower index, then the lower rank
    assert distributed.balance([2.0, 2.0, 2.0], 3) == (0, 1, 2)
    assert distributed.balance([], 4) == ()


def test_shares_are_each_ranks_part_of_the_cost():
    assert distributed.shares([3, 5, 1, 7, 4], (0, 1, 1, 0, 1), 2) == (0.5, 0.5)
    assert distributed.shares([6, 2], (0, 0), 2) == (1.0, 0.0)
    assert distributed.shares([3.0, 1.0], (1, 0), 3) == (0.25, 0.75, 0.0)


def test_split_balances_single_blocks_into_one_run_per_rank_and_group():
    # (4, 4) blocks cost 16 * 8 = 128 each, the (2, 2) block 4 * 4 = 16 (no refresh term: frequency inf). LPT over
    # single blocks: 128 -> r0, 128 -> r1, 128 -> r0 (tie: lower rank), 16 -> r1 (128 < 256).
    groups = [((4, 4), 3, True), ((2, 2), 1, True)]
    assert distributed.split(groups, math.inf, False, 2) == [(0, 0, 2, 0), (0, 2, 3, 1), (1, 0, 1, 1)]
    assert distributed.split(groups, math.inf, False, 1) == [(0, 0, 3, 0), (1, 0, 1, 0)]
    assert distributed.split([((5,), 2, False)], 10, False, 4) == [(0, 0, 1, 0), (0, 1, 2, 1)]  # idle ranks own none


def test_split_lets_a_deep_model_use_eight_ranks():
    """A 6-layer transformer stacks each weight shape over its layers: whole groups leave 8 ranks the largest
    group's work (36% of a step), chunks come within a block of an even eighth."""
    layer = torch.nn.TransformerEncoderLayer(256, 4, 1024, batch_first=True)
    model = torch.nn.Sequential(torch.nn.Embedding(512, 256), torch.nn.TransformerEncoder(layer, 6))
    groups = [(bg.shape, len(bg.members), bg.preconditioned) for bg in precond.Shampoo(model.parameters())._groups]
    step = [distributed.group_cost(*g, math.inf, False) for g in groups]
    whole = distributed.shares(
        step, distributed.balance([distributed.group_cost(*g, 100, False) for g in groups], 8), 8
    )
    chunks = distributed.split(groups, 100, False, 8)
    per_block = [distributed.group_cost(*groups[i][:1], stop - start, groups[i][2], math.inf, False)
                 for i, start, stop, _ in chunks]  # fmt: skip
    split = distributed.shares(per_block, [owner for *_, owner in chunks], 8)
    assert max(whole) > 0.35 and max(split) < 0.14
    assert all(sum(1 for c in chunks if c[0] == i and c[3] == r) <= 1 for i in range(len(groups)) for r in range(8))


def test_chunks_join_into_a_group_and_cut_back_to_their_own():
    """A refresh failed on the second chunk alone: joined, the group keeps each chunk's readiness, failures and
    SOAP's ``refreshed`` per block, and each chunk gets its own back; one process loading all three blocks as one
    group takes the cautious values."""
    from precond.optimizer import _blocks, _joined

    first = {"state": {"bases": [torch.ones(2, 3, 3)], "refreshed": True}, "ready": True, "consecutive_failures": 0}
    second = {"state": {"bases": [torch.zeros(1, 3, 3)], "refreshed": False}, "ready": False, "consecutive_failures": 2}
    joined = _joined([first, second], [2, 1])
    assert joined["state"]["bases"][0].shape == (3, 3, 3)
    for start, stop, chunk in ((0, 2, first), (2, 3, second)):
        back = _blocks(joined, start, stop)
        assert torch.equal(back["state"]["bases"][0], chunk["state"]["bases"][0])
        assert (back["ready"], back["consecutive_failures"]) == (chunk["ready"], chunk["consecutive_failures"])
        assert back["state"]["refreshed"] is chunk["state"]["refreshed"]
    whole = _blocks(joined, 0, 3)
    assert (whole["ready"], whole["consecutive_failures"], whole["state"]["refreshed"]) == (False, 2, False)
    alike = _joined([first, {**first, "state": {**first["state"], "bases": [torch.ones(1, 3, 3)]}}], [2, 1])
    assert alike["ready"] is True and alike["state"]["refreshed"] is True  # values held alike stay plain
    assert _joined([first, None], [2, 1]) is None


def test_a_checkpoint_with_other_block_counts_is_refused_before_anything_changes():
    params = [torch.nn.Parameter(torch.randn(24, 20))]
    trained = precond.Shampoo(params, **COMMON)
    params[0].grad = torch.randn(24, 20)
    trained.step()
    saved = trained.state_dict()
    other = precond.Shampoo([torch.nn.Parameter(torch.randn(36, 20))], **COMMON)  # (12, 12), (12, 8) blocks: 3 each
    assert [g["state"]["factors"][0].shape[0] for g in saved["kron"]["groups"]] == [2, 2]
    group_dict = other.param_groups[0]
    with pytest.raises(ValueError, match="block group 0 holds 2 blocks, this optimizer's 3"):
        other.load_state_dict(saved)
    assert other._step == 0 and other.param_groups[0] is group_dict  # torch.optim's load did not run either
    assert all(not bg.state["factors"][0].any() for bg in other._groups if bg.preconditioned)


def test_a_checkpoint_with_other_block_shapes_is_refused():
    """As many groups and blocks, other shapes: a (24, 20) matrix at max dim 12 has (12, 12) and (12, 8) blocks, a
    (24, 18) one (12, 12) and (12, 6); the first state that differs is named, before anything changes."""
    saved = precond.Shampoo([torch.nn.Parameter(torch.randn(24, 20))], **COMMON).state_dict()
    other = precond.Shampoo([torch.nn.Parameter(torch.randn(24, 18))], **COMMON)
    message = r"block group 1: first_moment is \(12, 8\) per block, this optimizer's \(12, 6\); it was saved for"
    with pytest.raises(ValueError, match=message):
        other.load_state_dict(saved)
    assert other._step == 0


def test_cost_counts_refreshes_amortised_and_inverse_updates_every_step():
    # a (4, 6) block: mode products 24 * 10 per step, refreshes 10 * (64 + 216) every 5 steps
    assert distributed.group_cost((4, 6), 3, True, 5, False) == 3 * (240 + 10 * 280 / 5)
    assert distributed.group_cost((4, 6), 3, True, 5, True) == 3 * (240 + 280 + 10 * 280 / 5)
    assert distributed.group_cost((24,), 2, False, 5, False) == 48


def test_single_process_without_a_process_group():
    assert distributed.resolve(None) is None and distributed.resolve(False) is None
    with pytest.raises(ValueError, match="must be a torch.distributed.ProcessGroup"):
        precond.Shampoo([torch.zeros(3, 3, requires_grad=True)], process_group="world")
