"""The variant hooks in JAX, as ``precond.preconditioners``: what a variant accumulates, what a refresh computes
and how a direction is formed, on a stack of same-shaped blocks (B, d_1, ..., d_k).

Everything is a pure function of (state dict, arrays) returning new values. ``refresh`` returns
(new state, ok, counter increments); the engine keeps the previous state when ok is False, so a refresh may
compute everything and never needs to undo anything.
"""

import jax
import jax.numpy as jnp
from jax import lax

from precond import registry
from precond.config import KronConfig
from precond_jax import matrix_functions as mf
from precond_jax import tensor_ops
from precond_jax.tensor_ops import apply_all, apply_all_but, block_norms, mode_product, normalised, trace, unfold


def _eye(stack: tuple[int, ...], d: int, dtype, scale: float = 1.0) -> jax.Array:
    return jnp.broadcast_to(scale * jnp.eye(d, dtype=dtype), (stack[0], d, d))


def _zero_counts() -> dict:
    return dict.fromkeys(registry.REFRESH_COUNTERS, 0)


def _t(a):
    return jnp.swapaxes(a, -1, -2)


class Variant(registry.VariantHooks):
    """A variant's JAX hooks, as ``precond.preconditioners.Variant`` (its docstring has the contract) but pure:
    each returns new state. ``refresh`` returns (new state, ok, counter increments) and cannot raise inside jit:
    the engine keeps the previous state when ok is False. ``direction`` returns (direction, new state)."""

    def init_state(self, stack: tuple[int, ...], dtype) -> dict:
        raise NotImplementedError

    def accumulate(self, state: dict, g: jax.Array, step: jax.Array) -> dict:
        raise NotImplementedError

    def refresh(self, state: dict, step: jax.Array) -> tuple[dict, jax.Array, dict]:
        raise NotImplementedError

    def direction(self, state: dict, g: jax.Array, m: jax.Array, step: jax.Array) -> tuple[jax.Array, dict]:
        raise NotImplementedError

    def _gram(self, g: jax.Array, i: int, other: jax.Array | None = None) -> jax.Array:
        """A factor statistic's product, its inputs at ``cfg.statistics_precision``."""
        return tensor_ops.statistics_gram(g, i, other, self.cfg.statistics_precision)

    def _ema(self, stat: jax.Array, update: jax.Array) -> jax.Array:
        b2 = self.cfg.betas[1]
        return stat + update if b2 == 1.0 else stat * b2 + (1 - b2) * update

    def _bias_correction(self, step: jax.Array, dtype) -> jax.Array:
        """Of the factor statistics: 1 - b2^n for their n accumulations by ``step``."""
        b2 = self.cfg.betas[1]
        return jnp.ones((), dtype) if b2 == 1.0 else (1 - b2 ** self.cfg.statistics_count(step)).astype(dtype)


class Shampoo(Variant):
    """P_i = (L_i / bc + eps I)^(-exponent); U = G~ x_1 P_1 ... x_k P_k (Shampoo2: trace-scaled, exponent 1/k)."""

    def __init__(self, cfg: KronConfig):
        super().__init__(cfg)
        self.squared = cfg.variant == "shampoo2"

    def init_state(self, stack, dtype):
        dims = stack[1:]
        return {
            "factors": [jnp.zeros((stack[0], d, d), dtype) for d in dims],
            "roots": [_eye(stack, d, dtype) for d in dims],
        }

    def accumulate(self, state, g, step):
        factors = state["factors"]
        g = g.astype(factors[0].dtype)
        if self.squared and self.cfg.online:
            estimates = [normalised(f) for f in factors]
            new = [
                self._ema(f, mf.symmetrize(self._gram(g, i, apply_all_but(g, estimates, i))))
                for i, f in enumerate(factors)
            ]
        else:
            new = [self._ema(f, self._gram(g, i)) for i, f in enumerate(factors)]
        return {**state, "factors": new}

    def refresh(self, state, step):
        factors = state["factors"]
        root = 1.0 / registry.shampoo_exponent(self.cfg, len(factors))
        bc = self._bias_correction(step, factors[0].dtype)
        roots, ok, counts = [], jnp.ones((), bool), _zero_counts()
        for f in factors:
            a = f / bc
            if self.squared and self.cfg.trace_scaling:
                a = a / jnp.sqrt(jnp.maximum(trace(a), jnp.finfo(a.dtype).tiny))[:, None, None]
            if self.cfg.root_method == "newton":
                p, ok_i = mf.inverse_root_newton(a, round(root), self.cfg.eps)
            else:
                p, ok_i, used_fp64 = mf.inverse_root_eigh(a, root, self.cfg.eps)
                counts["fp64_retries"] = counts["fp64_retries"] + used_fp64.astype(jnp.int32)
            roots.append(p)
            ok = ok & ok_i
        counts["refreshes"] = len(roots) * roots[0].shape[0]
        return {**state, "roots": roots}, ok, counts

    def direction(self, state, g, m, step):
        return apply_all(m.astype(state["roots"][0].dtype), state["roots"]), state


class KrADagradStar(Variant):
    """X_i ~ L_i^-1 updated every step without inversion; P_i = X_i^(1/(2k)); the direction is rescaled to the
    first-moment estimate's norm per block."""

    def init_state(self, stack, dtype):
        dims = stack[1:]
        return {
            "inverse_factors": [_eye(stack, d, dtype, 1 / self.cfg.eps) for d in dims],
            "roots": [_eye(stack, d, dtype) for d in dims],
        }

    def _decay(self, x: jax.Array) -> tuple[jax.Array, float]:
        """The EMA L <- b2 L + (1 - b2) A in inverse form: X <- X / b2, then add (sqrt(1 - b2) u)(...)^T."""
        b2 = self.cfg.betas[1]
        return (x / b2 if b2 < 1.0 else x), registry.inverse_decay_scale(b2)

    def accumulate(self, state, g, step):
        xs = state["inverse_factors"]
        g = g.astype(xs[0].dtype)
        new = []
        for i, x in enumerate(xs):
            x, scale = self._decay(x)
            new.append(mf.kradagrad_star_update(x, scale * unfold(g, i), x.shape[-1]))
        return {**state, "inverse_factors": new}

    def _roots(self, xs, root: float):
        results = [mf.positive_root(x, root) for x in xs]
        ok = jnp.all(jnp.stack([r[1] for r in results]))
        retries = sum(r[2].astype(jnp.int32) for r in results)
        return [r[0] for r in results], ok, retries

    def refresh(self, state, step):
        xs = state["inverse_factors"]
        roots, ok, retries = self._roots(xs, 2 * len(xs))
        counts = {**_zero_counts(), "refreshes": len(xs) * xs[0].shape[0], "fp64_retries": retries}
        return {**state, "roots": roots}, ok, counts

    def direction(self, state, g, m, step):
        m = m.astype(state["roots"][0].dtype)
        u = apply_all(m, state["roots"])
        return u * (block_norms(m) / (block_norms(u) + 1e-16)), state


class KrADagrad(KrADagradStar):
    """One factor per step (the largest dim, the others on perfect-square steps); G^ = G x_j X_j^(1/2) for the
    other factors; damping then X - X A X / (1 + ||X A||_F); P_i = X_i^(1/k)."""

    def init_state(self, stack, dtype):
        k = len(stack) - 1
        state = super().init_state(stack, dtype)
        state["roots"] = [_eye(stack, d, dtype, self.cfg.eps ** (-1.0 / k)) for d in stack[1:]]
        state["half_roots"] = [_eye(stack, d, dtype, self.cfg.eps**-0.5) for d in stack[1:]]
        return state

    def accumulate(self, state, g, step):
        xs = state["inverse_factors"]
        g = g.astype(xs[0].dtype)
        damping = registry.kradagrad_damping(self.cfg)

        def update(square_step: bool):
            new = list(xs)
            for i in registry.kradagrad_factors(tuple(g.shape[1:]), square_step):
                ghat = apply_all_but(g, state["half_roots"], i)
                x, scale = self._decay(xs[i])
                new[i] = mf.kradagrad_update(x, scale * unfold(ghat, i), damping)
            return new

        dims = tuple(g.shape[1:])
        if registry.kradagrad_factors(dims, True) == registry.kradagrad_factors(dims, False):
            return {**state, "inverse_factors": update(False)}
        new = lax.cond(_is_square(self.cfg.statistics_count(step)), lambda: update(True), lambda: update(False))
        return {**state, "inverse_factors": new}

    def refresh(self, state, step):
        xs = state["inverse_factors"]
        roots, ok, retries = self._roots(xs, len(xs))
        if len(xs) == 2:
            half = roots
        else:
            half, ok_half, more = self._roots(xs, 2)
            ok, retries = ok & ok_half, retries + more
        counts = {**_zero_counts(), "refreshes": len(xs) * xs[0].shape[0], "fp64_retries": retries}
        return {**state, "roots": roots, "half_roots": half}, ok, counts

    def direction(self, state, g, m, step):
        return apply_all(m.astype(state["roots"][0].dtype), state["roots"]), state


class EShampoo(Variant):
    """Eigenvalue-corrected Shampoo: D <- b2 D + (1 - b2) (Q^T G Q)^2 in the factors' eigenbasis Q;
    U = Q [(Q^T G~ Q) / (sqrt(D / bc) + eps)] Q^T. Refreshes are skipped per block and factor while the basis
    criterion stays <= refresh_tau."""

    def init_state(self, stack, dtype):
        dims = stack[1:]
        return {
            "factors": [jnp.zeros((stack[0], d, d), dtype) for d in dims],
            "bases": [_eye(stack, d, dtype) for d in dims],
            "second_moment": jnp.zeros(stack, dtype),
            "refresh_counts": [jnp.zeros((stack[0],), jnp.int32) for _ in dims],
        }

    def accumulate(self, state, g, step):
        g = g.astype(state["factors"][0].dtype)
        return {**state, "factors": [self._ema(f, self._gram(g, i)) for i, f in enumerate(state["factors"])]}

    def _need(self, f, q) -> jax.Array:
        """Which blocks' factor needs a new basis: all, or those whose criterion exceeds refresh_tau."""
        if self.cfg.refresh_tau > 0:
            return mf.basis_criterion(f, q) > self.cfg.refresh_tau
        return jnp.ones(q.shape[0], bool)

    def _refresh_factor(self, state, i, q_new, perm, need, counts):
        """Take the new basis for the blocks ``need``; the second moment follows its columns or stays in place
        (``cfg.refresh_rule``)."""
        state["bases"][i] = jnp.where(need[:, None, None], q_new, state["bases"][i])
        if self.cfg.refresh_rule.follow_columns:
            state["second_moment"] = _permute(state["second_moment"], perm, i, need)
        state["refresh_counts"][i] = state["refresh_counts"][i] + need.astype(jnp.int32)
        counts["refreshes"] = counts["refreshes"] + jnp.sum(need, dtype=jnp.int32)
        counts["skipped"] = counts["skipped"] + jnp.sum(~need, dtype=jnp.int32)

    def _basis_input(self, f, step):
        """The matrix whose eigenbasis a refresh computes: L, or Meta's L / bc + eps I."""
        if not self.cfg.refresh_rule.regularised_input:
            return f
        return f / self._bias_correction(step, f.dtype) + self.cfg.eps * jnp.eye(f.shape[-1], dtype=f.dtype)

    def _eigh_basis(self, a, q):
        """(new basis, ok, the permutation for the second moment: None when it stays in place)."""
        rule = self.cfg.refresh_rule
        _, q_new, ok = mf.eigenbasis(a, rule.descending)
        return q_new, ok, (mf.match_columns(q_new, q) if rule.follow_columns else None)

    def refresh(self, state, step):
        state = _copy_lists(state)
        ok, counts = jnp.ones((), bool), _zero_counts()
        descending = self.cfg.refresh_rule.descending
        for i, f in enumerate(state["factors"]):
            q = state["bases"][i]
            a = self._basis_input(f, step)
            need = self._need(a, q)
            if self.cfg.basis_method == "qr":
                tau, iterations = self.cfg.refresh_tau, self.cfg.max_qr_iterations
                q_new, perm = mf.qr_refine(a, q, tau, iterations, active=need, descending=descending)
                ok_i = mf.all_finite(q_new)
            else:
                q_new, ok_i, perm = self._eigh_basis(a, q)
            ok = ok & ok_i
            self._refresh_factor(state, i, q_new, perm, need, counts)
        return state, ok, counts

    def direction(self, state, g, m, step):
        """Also updates the second moment, in the basis current after this step's refresh."""
        bases = state["bases"]
        b2 = self.cfg.betas[1]
        g_rot = apply_all(g.astype(bases[0].dtype), bases, transpose=True)
        d = state["second_moment"] * b2 + (1 - b2) * (g_rot * g_rot)
        state = {**state, "second_moment": d}
        m_rot, state = self._rotated_moment(state, g_rot, m, step)
        bc = (1 - b2**step).astype(d.dtype)
        return apply_all(m_rot / (jnp.sqrt(d / bc) + self.cfg.eps), bases), state

    def _rotated_moment(self, state, g_rot, m, step):
        return apply_all(m.astype(g_rot.dtype), state["bases"], transpose=True), state


class SOAP(EShampoo):
    """EShampoo with the first moment kept in the eigenbasis (rotated when Q changes) and bases refreshed by one
    power-iteration + QR step (eigh the first time); the second moment per ``cfg.refresh_rule`` (the preset:
    "follow", as SOAP's reference code)."""

    def init_state(self, stack, dtype):
        state = super().init_state(stack, dtype)
        state["rotated_first_moment"] = jnp.zeros(stack, dtype)
        state["refreshed"] = jnp.zeros((), bool)
        return state

    def _first_refresh(self, state, step):
        state, ok, counts = _copy_lists(state), jnp.ones((), bool), _zero_counts()
        everything = jnp.ones(state["bases"][0].shape[0], bool)
        for i, f in enumerate(state["factors"]):
            q_new, ok_i, perm = self._eigh_basis(self._basis_input(f, step), state["bases"][i])
            ok = ok & ok_i
            self._refresh_factor(state, i, q_new, perm, everything, counts)
        return state, ok, counts

    def _power_refresh(self, state, step):
        state, counts = _copy_lists(state), _zero_counts()
        for i, f in enumerate(state["factors"]):
            q = state["bases"][i]
            a = self._basis_input(f, step)
            need = self._need(a, q)
            q_new, perm = mf.power_qr_step(a, q, self.cfg.refresh_rule.descending)
            self._refresh_factor(state, i, q_new, perm, need, counts)
        return state, mf.all_finite(*state["bases"]), counts

    def refresh(self, state, step):
        old = state["bases"]
        new, ok, counts = lax.cond(state["refreshed"], self._power_refresh, self._first_refresh, state, step)
        m = new["rotated_first_moment"]
        for i, (q_old, q_new) in enumerate(zip(old, new["bases"], strict=True)):
            m = mode_product(m, _t(q_new) @ q_old, i)
        return {**new, "rotated_first_moment": m, "refreshed": jnp.ones((), bool)}, ok, counts

    def _rotated_moment(self, state, g_rot, m, step):
        b1 = self.cfg.betas[0]
        moment = (1 - b1) * g_rot + b1 * state["rotated_first_moment"]
        estimate = b1 * moment + (1 - b1) * g_rot if self.cfg.nesterov else moment
        bc = (1 - b1**step).astype(moment.dtype)
        return estimate / bc, {**state, "rotated_first_moment": moment}


def make_variant(cfg: KronConfig) -> Variant:
    """The hooks class the variant's declaration names (``registry.VariantSpec.hooks``)."""
    return globals()[registry.SPECS[cfg.variant].hooks](cfg)


def _copy_lists(state: dict) -> dict:
    """A shallow copy whose lists may be assigned to without touching the caller's."""
    return {k: list(v) if isinstance(v, list) else v for k, v in state.items()}


def _is_square(step: jax.Array) -> jax.Array:
    root = jnp.floor(jnp.sqrt(step.astype(jnp.float32))).astype(step.dtype)
    return jnp.any(jnp.stack([(root + k) ** 2 == step for k in (-1, 0, 1)]))


def _permute(d: jax.Array, perm: jax.Array, dim: int, rows: jax.Array) -> jax.Array:
    """Reorder the second moment along tensor dim ``dim`` by ``perm`` (B, d), for the blocks where ``rows``."""
    moved = jnp.moveaxis(d, dim + 1, -1)
    index = perm.reshape(perm.shape[0], *([1] * (moved.ndim - 2)), perm.shape[-1])
    permuted = jnp.moveaxis(jnp.take_along_axis(moved, index, axis=-1), -1, dim + 1)
    return jnp.where(rows.reshape((-1,) + (1,) * (d.ndim - 1)), permuted, d)
