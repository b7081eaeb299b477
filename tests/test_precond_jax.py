"""The JAX core against the reference behaviours of ALGORITHMS.md (the torch core's tests, in JAX): optax's
AdamW exactly when preconditioning is off, closed-form matrix functions, failures kept and counted, EShampoo and
SOAP equal to Adam before their first refresh, frozen parameters, non-finite gradients, checkpointable state.
Parity with the torch core itself is tests/test_precond_jax_parity.py."""

import functools
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import precond_jax
from precond import registry
from precond_jax import matrix_functions as mf
from tests.jax_compat import enable_x64

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

OFF = math.inf  # start_preconditioning_step: never refresh
VARIANTS = list(registry.VARIANTS)


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w1": jnp.asarray(rng.standard_normal((8, 6)), jnp.float32),
        "b1": jnp.zeros(8),
        "w2": jnp.asarray(rng.standard_normal((3, 8)), jnp.float32),
    }


def grad_sequence(params, steps, seed=1, scale=1.0):
    rng = np.random.default_rng(seed)
    return [
        jax.tree.map(lambda p: jnp.asarray(scale * rng.standard_normal(p.shape), p.dtype), params) for _ in range(steps)
    ]


@functools.lru_cache
def jitted_step(opt):
    """One compiled step per transformation (compiling dominates these tests' time)."""

    @jax.jit
    def step(params, state, g):
        updates, state = opt.update(g, state, params)
        return optax.apply_updates(params, updates), state

    return step


def run(opt, params, grads, state=None):
    """(params, state) after one jitted update per gradient."""
    state = opt.init(params) if state is None else state
    step = jitted_step(opt)
    for g in grads:
        params, state = step(params, state, g)
    return params, state


def run_eagerly(opt, params, grads):
    """Op by op (no jit): XLA fuses the two programs differently under jit (multiply-adds may round differently,
    a few float32 ulps), so bit-for-bit comparisons run eagerly."""
    with jax.disable_jit():
        state = opt.init(params)
        for g in grads:
            updates, state = opt.update(g, state, params)
            params = optax.apply_updates(params, updates)
    return params


def kron_state(state) -> precond_jax.ScaleByKronState:
    (found,) = precond_jax._find(state, precond_jax.ScaleByKronState)
    return found


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def assert_trees_close(a, b, rtol=1e-6, atol=1e-7):
    """Equal to float32 rounding."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def test_importing_the_jax_core_imports_neither_torch_nor_the_harness():
    code = (
        "import sys, precond_jax; bad = [m for m in ('torch', 'runner', 'workloads', 'submissions') if m in "
        "sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class TestPreconditioningOffIsTheBaseMethod:
    def test_adam_grafted_shampoo_is_optax_adamw_bit_for_bit(self):
        schedule = optax.linear_schedule(1e-2, 1e-3, 10)  # schedules compose as in optax
        params, grads = make_params(), grad_sequence(make_params(), 10)
        ours = precond_jax.shampoo(schedule, 0.1, nesterov=False, start_preconditioning_step=OFF)
        ref = optax.adamw(schedule, eps=1e-8, weight_decay=0.1)
        assert_trees_equal(run_eagerly(ours, params, grads), run_eagerly(ref, params, grads))
        assert_trees_close(run(ours, params, grads)[0], run(ref, params, grads)[0])  # jitted: to float32 rounding

    @pytest.mark.parametrize("variant", ["eshampoo", "soap"])
    def test_identity_basis_is_adamw(self, variant):
        params, grads = make_params(), grad_sequence(make_params(), 10)
        ours, _ = run(
            getattr(precond_jax, variant)(1e-2, 0.1, nesterov=False, start_preconditioning_step=OFF), params, grads
        )
        ref, _ = run(optax.adamw(1e-2, eps=1e-8, weight_decay=0.1), params, grads)
        assert_trees_close(ours, ref)

    def test_sgd_graft_is_optax_sgd(self):
        params, grads = make_params(), grad_sequence(make_params(), 5)
        ours = precond_jax.shampoo(1e-2, grafting="sgd", betas=(0.0, 0.999), start_preconditioning_step=OFF)
        assert_trees_equal(run_eagerly(ours, params, grads), run_eagerly(optax.sgd(1e-2), params, grads))

    def test_nesterov_shampoo_is_nadamw_and_nadamw_is_algoperfs(self):
        params, grads = make_params(), grad_sequence(make_params(), 6)
        ours = run_eagerly(precond_jax.shampoo(1e-2, 0.1, start_preconditioning_step=OFF), params, grads)
        nadamw = run_eagerly(precond_jax.nadamw(1e-2, weight_decay=0.1), params, grads)
        assert_trees_equal(ours, nadamw)
        # AlgoPerf's NAdamW by hand: (b1 m + (1 - b1) g) / (1 - b1^t) over sqrt(v / (1 - b2^t)) + eps
        w, m, v = np.asarray(params["w1"], np.float64), 0.0, 0.0
        for t, g in enumerate(grads, start=1):
            g = np.asarray(g["w1"], np.float64)
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            u = (0.9 * m + 0.1 * g) / (1 - 0.9**t) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
            w = w - 1e-2 * (u + 0.1 * w)
        np.testing.assert_allclose(nadamw["w1"], w, rtol=1e-5, atol=1e-6)
        # optax.nadamw is Dozat's NAdam (momentum term corrected by 1 - b1^(t+1)): a different method
        dozat, _ = run(optax.nadamw(1e-2, weight_decay=0.1), params, grads)
        assert not np.allclose(dozat["w1"], nadamw["w1"], rtol=1e-5, atol=1e-6)


class TestMatrixFunctions:
    def random_spd(self, d, low, high, seed=0):
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        eigs = np.logspace(np.log10(low), np.log10(high), d)
        return (q * eigs) @ q.T, q, eigs

    def test_inverse_roots_and_positive_roots_in_closed_form(self):
        with enable_x64():
            a, q, eigs = self.random_spd(6, 1e-2, 1e2)
            p, ok, used_fp64 = mf.inverse_root_eigh(jnp.asarray(a)[None], 4, 1e-3)
            np.testing.assert_allclose(p[0], (q * (eigs + 1e-3) ** -0.25) @ q.T, rtol=1e-10, atol=1e-12)
            assert bool(ok) and not bool(used_fp64)
            p, ok = mf.inverse_root_newton(jnp.asarray(a)[None], 2, 1e-3)
            np.testing.assert_allclose(p[0], (q * (eigs + 1e-3) ** -0.5) @ q.T, rtol=1e-5, atol=1e-7)
            assert bool(ok)
            r, ok, _ = mf.positive_root(jnp.asarray(a)[None], 3)
            np.testing.assert_allclose(r[0], (q * eigs ** (1 / 3)) @ q.T, rtol=1e-10, atol=1e-12)

    def test_rank_deficient_input_gets_eps_on_its_null_space(self):
        with enable_x64():
            a = jnp.diag(jnp.asarray([4.0, 0.0]))[None]
            p, _, _ = mf.inverse_root_eigh(a, 2, 1e-4)
            np.testing.assert_allclose(jnp.diag(p[0]), [(4 + 1e-4) ** -0.5, 1e-4**-0.5], rtol=1e-10)

    def test_newton_reports_non_convergence(self):
        a, _, _ = self.random_spd(5, 1e-6, 1e2)
        _, ok = mf.inverse_root_newton(jnp.asarray(a, jnp.float32)[None], 4, 0.0, max_iterations=2)
        assert not bool(ok)

    def test_star_update_is_sherman_morrison_for_rank_one(self):
        with enable_x64():
            a, _, _ = self.random_spd(4, 0.5, 2.0)
            u = np.random.default_rng(3).standard_normal((4, 1))
            x = np.linalg.inv(a)
            new = mf.kradagrad_star_update(jnp.asarray(x)[None], jnp.asarray(u)[None], 1.0)
            np.testing.assert_allclose(new[0], np.linalg.inv(a + u @ u.T), rtol=1e-10, atol=1e-12)

    def test_match_columns_is_a_permutation_that_follows_re_sorted_columns(self):
        with enable_x64():
            _, q, _ = self.random_spd(6, 1.0, 2.0)
            order = np.array([3, 0, 5, 1, 4, 2])
            signs = np.array([1, -1, 1, 1, -1, 1])
            perm = mf.match_columns(jnp.asarray(q[:, order] * signs)[None], jnp.asarray(q)[None])
            np.testing.assert_array_equal(perm[0], order)
            noisy = np.random.default_rng(0).standard_normal((3, 6, 6))  # unrelated bases: still one-to-one
            perm = mf.match_columns(jnp.asarray(noisy), jnp.asarray(noisy[::-1]))
            assert all(sorted(row) == list(range(6)) for row in np.asarray(perm).tolist())

    def test_criterion_is_the_relative_error_of_keeping_the_basis(self):
        with enable_x64():
            a, q, _ = self.random_spd(5, 1.0, 10.0)
            assert float(mf.basis_criterion(jnp.asarray(a)[None], jnp.asarray(q)[None])[0]) < 1e-12
            eye = np.eye(5)
            b = a  # basis I: B = A
            expected = np.linalg.norm(b - np.diag(np.diag(b))) / np.linalg.norm(b)
            np.testing.assert_allclose(mf.basis_criterion(jnp.asarray(a)[None], jnp.asarray(eye)[None])[0], expected)


def forced_eigh_failure(monkeypatch, only_float32=False):
    real = jnp.linalg.eigh

    def failing(a, **kw):
        vals, vecs = real(a, **kw)
        if only_float32 and a.dtype != jnp.float32:
            return vals, vecs
        return vals * jnp.nan, vecs

    monkeypatch.setattr(jnp.linalg, "eigh", failing)


class TestFailuresAndCounters:
    def test_forced_eigh_failures_keep_the_previous_root_then_flag(self, monkeypatch):
        kw = dict(precondition_frequency=1, start_preconditioning_step=1, max_consecutive_failures=3)
        params, grads = make_params(), grad_sequence(make_params(), 6)
        params, state = run(precond_jax.shampoo(1e-2, **kw), params, grads[:2])
        before = precond_jax.counters(state)
        assert before["refreshes"] > 0 and before["failures"] == 0
        roots = [g["variant"]["roots"] for g in kron_state(state).groups if "variant" in g]
        forced_eigh_failure(monkeypatch)
        failing = precond_jax.shampoo(1e-2, **kw)  # a new transformation: traced with the failing eigh
        params, state = run(failing, params, grads[2:3], state)
        after = precond_jax.counters(state)
        assert after["failures"] == 2 and after["fallbacks"] == 2  # two preconditioned block groups
        assert after["refreshes"] == before["refreshes"]
        assert_trees_equal(roots, [g["variant"]["roots"] for g in kron_state(state).groups if "variant" in g])
        params, state = run(failing, params, grads[3:4], state)
        precond_jax.check(state)  # two failures in a row: not yet
        params, state = run(failing, params, grads[4:5], state)
        with pytest.raises(RuntimeError, match="in a row"):
            precond_jax.check(state)
        assert all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree.leaves(params))

    def test_fp64_retry_is_counted(self, monkeypatch):
        forced_eigh_failure(monkeypatch, only_float32=True)
        with enable_x64():
            params = jax.tree.map(lambda p: p.astype(jnp.float32), make_params())
            opt = precond_jax.shampoo(1e-2, precondition_frequency=1, start_preconditioning_step=1)
            _, state = run(opt, params, grad_sequence(params, 2))
        counts = precond_jax.counters(state)
        assert counts["fp64_retries"] > 0 and counts["failures"] == 0

    def test_non_finite_factors_are_flagged_with_advice(self):
        params = make_params()
        opt = precond_jax.shampoo(1e-2, precondition_frequency=1, start_preconditioning_step=1)
        _, state = run(opt, params, grad_sequence(params, 1, scale=1e30))  # finite gradients, overflowing factors
        with pytest.raises(FloatingPointError, match="lower the learning rate"):
            precond_jax.check(state)

    def test_refreshes_follow_the_schedule_inside_jit(self):
        params = make_params()
        opt = precond_jax.shampoo(1e-2, precondition_frequency=3, start_preconditioning_step=2)
        _, state = run(opt, params, grad_sequence(params, 8))  # refreshes at steps 2, 5 and 8
        assert precond_jax.counters(state)["refreshes"] == 3 * 2 * 2  # x 2 block groups x 2 factors

    def test_eshampoo_criterion_skips_refreshes(self):
        params, grads = make_params(), grad_sequence(make_params(), 30)
        kw = dict(precondition_frequency=1, start_preconditioning_step=1)
        _, always = run(precond_jax.eshampoo(1e-2, refresh_tau=0.0, **kw), params, grads)
        _, lazy = run(precond_jax.eshampoo(1e-2, refresh_tau=0.3, **kw), params, grads)
        always, lazy = precond_jax.counters(always), precond_jax.counters(lazy)
        assert always["skipped"] == 0 and lazy["skipped"] > 0
        assert lazy["refreshes"] + lazy["skipped"] == always["refreshes"]


@pytest.mark.parametrize("variant", ["eshampoo", "soap"])
def test_eigenvalue_corrected_variants_are_adam_before_their_first_refresh(variant):
    params, grads = make_params(), grad_sequence(make_params(), 6)
    opt = getattr(precond_jax, variant)(1e-2, 0.1, nesterov=False, precondition_frequency=5)
    ours, _ = run(opt, params, grads[:4])
    adam, _ = run(optax.adamw(1e-2, eps=1e-8, weight_decay=0.1), params, grads[:4])
    assert_trees_close(ours, adam)
    ours, _ = run(opt, params, grads)  # the refresh at step 5 turns the basis
    adam, _ = run(optax.adamw(1e-2, eps=1e-8, weight_decay=0.1), params, grads)
    assert not np.allclose(ours["w1"], adam["w1"], rtol=1e-4, atol=1e-5)


def _dot_precisions(jaxpr) -> list:
    """The precision of every dot_general in a jaxpr, nested ones (jit, cond, while, scan) included."""
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            out.append(eqn.params["precision"])
        for value in eqn.params.values():
            for inner in value if isinstance(value, (list, tuple)) else [value]:
                inner = getattr(inner, "jaxpr", inner)  # a ClosedJaxpr's Jaxpr
                if hasattr(inner, "eqns"):
                    out += _dot_precisions(inner)
    return out


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_product_of_the_engine_asks_for_fp32(variant):
    """JAX's default lets a GPU compute fp32 dots in TF32 (torch's does not): the engine asks for float32 on every
    one, statistics, roots, bases and directions, so a GPU computes what the torch core does; only
    statistics_precision asks for less, and then explicitly."""
    params = make_params()
    opt = getattr(precond_jax, variant)(1e-2, precondition_frequency=1, start_preconditioning_step=1)
    jaxpr = jax.make_jaxpr(opt.update)(grad_sequence(params, 1)[0], opt.init(params), params).jaxpr
    precisions = _dot_precisions(jaxpr)
    highest = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    assert precisions and all(p == highest for p in precisions), set(precisions)


@pytest.mark.parametrize("variant", ["nadamw", *VARIANTS])
def test_frozen_parameters_do_not_move(variant):
    params = make_params()
    opt = getattr(precond_jax, variant)(1e-2, weight_decay=0.1)
    grads = [{**g, "w2": None} for g in grad_sequence(params, 3)]
    moved, _ = run(opt, params, grads)
    np.testing.assert_array_equal(moved["w2"], params["w2"])
    assert not np.allclose(moved["w1"], params["w1"])


@pytest.mark.parametrize("policy", ["raise", "skip"])
def test_a_non_finite_gradient_changes_nothing(policy):
    """Inside jit nothing can raise: the step is skipped under both policies; check() raises for "raise"."""
    params = make_params()
    grads = grad_sequence(params, 4)
    bad = grads[:2] + [{**grads[2], "w2": grads[2]["w2"].at[0, 0].set(jnp.nan)}] + grads[3:]
    opt = precond_jax.shampoo(1e-2, 0.1, precondition_frequency=1, start_preconditioning_step=1, nonfinite=policy)
    moved, state = run(opt, params, bad)
    clean, _ = run(opt, params, grads[:2] + grads[3:])
    assert_trees_equal(moved, clean)  # neither the parameters nor the state saw the bad step
    assert precond_jax.counters(state)["nonfinite_skips"] == 1
    if policy == "skip":
        precond_jax.check(state, params)
    else:
        with pytest.raises(FloatingPointError, match=r"\['w2'\] \(shape \(3, 8\)\) at step 3"):
            precond_jax.check(state, params)


def test_state_is_a_pytree_of_arrays_that_round_trips_through_numpy():
    params, grads = make_params(), grad_sequence(make_params(), 12)
    opt = precond_jax.soap(1e-2, precondition_frequency=3)
    straight, _ = run(opt, params, grads)
    half, state = run(opt, params, grads[:6])
    leaves, treedef = jax.tree.flatten(state)
    assert all(isinstance(x, jax.Array) for x in leaves)
    saved = {str(i): np.asarray(x) for i, x in enumerate(leaves)}  # e.g. np.savez: no pickled objects
    restored = jax.tree.unflatten(treedef, [jnp.asarray(saved[str(i)]) for i in range(len(leaves))])
    resumed, _ = run(opt, half, grads[6:], restored)
    assert_trees_equal(resumed, straight)


def test_same_shaped_blocks_are_stacked_and_masks_route_parameters():
    rng = np.random.default_rng(0)
    params = {
        "layers": [jnp.asarray(rng.standard_normal((16, 16)), jnp.float32) for _ in range(4)],
        "big": jnp.asarray(rng.standard_normal((32, 16)), jnp.float32),
        "table": jnp.asarray(rng.standard_normal((50, 16)), jnp.float32),
    }
    opt = precond_jax.shampoo(
        1e-2, max_preconditioner_dim=16, precondition=lambda p: {**jax.tree.map(lambda _: True, p), "table": False}
    )
    state = kron_state(opt.init(params))
    shapes = sorted((tuple(g["first_moment"].shape), "variant" in g) for g in state.groups)
    assert shapes == [((1, 800), False), ((6, 16, 16), True)]  # six (16, 16) blocks in one stack; the table flat


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_parameter_that_is_not_real_floating_point_is_a_one_line_error(variant):
    """(Bad options, against both cores: tests/test_option_validation.py.)"""
    with pytest.raises(ValueError, match=r"\['step'\] has dtype int32; only real floating-point"):
        getattr(precond_jax, variant)(1e-2).init({"w": jnp.zeros((3, 3)), "step": jnp.zeros((), jnp.int32)})


def test_inside_an_optax_chain_the_state_is_found_and_counted():
    params = make_params()
    opt = optax.chain(
        optax.clip_by_global_norm(1.0),
        precond_jax.shampoo(1e-2, precondition_frequency=2, start_preconditioning_step=2),
    )
    _, state = run(opt, params, grad_sequence(params, 4))
    assert precond_jax.counters(state)["refreshes"] == 2 * 2 * 2  # steps 2 and 4, 2 block groups, 2 factors
    precond_jax.check(state, params)


# fashion_vit's parameter shapes, 4 layers of each: block groups of several same-shaped blocks (batched
# decompositions) whose refreshes XLA runs concurrently.
_VIT_SHAPES = [(1, 49, 64), (16, 64), (64, 64), (64, 192), (64, 256), (256, 64), (64, 10), (64,), (192,), (256,)]
_CONCURRENT_REFRESHES = f"""
import jax, jax.numpy as jnp, precond_jax
params = {{f"{{i}}_{{k}}": jnp.ones(s) * 0.1 for i, s in enumerate({_VIT_SHAPES!r}) for k in range(4)}}
opt = precond_jax.shampoo(1e-3, precondition_frequency=1, start_preconditioning_step=1)
step = jax.jit(lambda s, p, g: opt.update(g, s, p))
state = opt.init(params)
for i in range(4):
    grads = jax.tree.map(lambda p: jax.random.normal(jax.random.PRNGKey(i), p.shape), params)
    _, state = jax.block_until_ready(step(state, params, grads))
print("ok")
"""


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_concurrent_refreshes_of_many_block_groups_finish_on_a_two_thread_cpu():
    """Regression: with batched CPU eighs, jaxlib 0.10 parked both of XLA's pool threads inside concurrent
    decompositions and this step never returned (matrix_functions._one_matrix_at_a_time_on_cpu). A child
    process with a deadline, so a hang fails the test instead of the run."""
    cpus = sorted(os.sched_getaffinity(0))[:2]  # XLA sizes its pool from the affinity: two threads, as here
    if len(cpus) < 2:
        pytest.skip("needs two CPUs (a one-thread pool runs every decomposition inline)")
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CONCURRENT_REFRESHES],
            capture_output=True, text=True, timeout=120, env=env, preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("four Shampoo steps with every block group refreshing did not finish in 120 s (deadlock)")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
