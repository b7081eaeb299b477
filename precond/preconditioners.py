"""The variant hooks. Each variant says what it accumulates, what a refresh computes and how a direction is
formed, on a stack of same-shaped blocks (B, d_1, ..., d_k) with one (B, d_i, d_i) factor per dimension.
Blocking, momentum, grafting, weight decay and checkpointing live in ``precond.optimizer``.
"""

import torch

from precond import matrix_functions as mf
from precond import registry, tensor_ops
from precond.config import KronConfig
from precond.tensor_ops import apply_all, apply_all_but, block_norms, mode_product, normalised, trace, unfold


def _eye(shape: tuple[int, ...], d: int, dtype, device, scale: float = 1.0) -> torch.Tensor:
    return (scale * torch.eye(d, dtype=dtype, device=device)).expand(shape[0], d, d).clone()


class Variant(registry.VariantHooks):
    """A variant's torch hooks; traits and config come from ``registry.VariantHooks``. The engine calls, per
    group of same-shaped blocks: ``init_state`` once, ``accumulate`` every step, ``refresh`` on the steps
    ``cfg.refresh_due`` names, and ``direction`` every step once ``ready_before_refresh`` or a refresh succeeded.
    Each updates ``state`` in place (the framework's way here; the JAX hooks return new state instead)."""

    def init_state(self, stack_shape: tuple[int, ...], dtype: torch.dtype, device) -> dict:
        """The block group's state: the keys ``spec.state_keys`` declares."""
        raise NotImplementedError

    def accumulate(self, state: dict, g: torch.Tensor, step: int) -> None:
        """Add this step's stacked gradient ``g`` to the factor statistics."""
        raise NotImplementedError

    def refresh(self, state: dict, step: int, counters: dict) -> None:
        """Recompute roots or bases, adding to ``counters`` (``registry.REFRESH_COUNTERS``); raise
        MatrixFunctionError on failure. Compute everything first and assign at the end, so a failure leaves the
        previous state whole."""
        raise NotImplementedError

    def direction(self, state: dict, g: torch.Tensor, m: torch.Tensor, step: int) -> torch.Tensor:
        """The preconditioned direction from the first-moment estimate ``m`` (None when the variant owns its
        first moment); may advance state the direction alone reads (EShampoo's second moment, SOAP's moment)."""
        raise NotImplementedError

    def _gram(self, g: torch.Tensor, i: int, other: torch.Tensor | None = None) -> torch.Tensor:
        """A factor statistic's product, its inputs at ``cfg.statistics_precision``."""
        return tensor_ops.statistics_gram(g, i, other, self.cfg.statistics_precision)

    def _ema_gram(self, stat: torch.Tensor, g: torch.Tensor, i: int) -> None:
        """The EMA of a factor statistic with G_(i) G_(i)^T, folded into the product where it can be."""
        precision, b2 = self.cfg.statistics_precision, self.cfg.betas[1]
        if tensor_ops.folds_ema(g, i, b2, precision):
            tensor_ops.ema_gram(stat, g, i, b2, precision)
        else:
            self._ema(stat, self._gram(g, i))

    def _ema(self, stat: torch.Tensor, update: torch.Tensor) -> None:
        b2 = self.cfg.betas[1]
        if b2 == 1.0:
            stat.add_(update)
        else:
            stat.mul_(b2).add_(update, alpha=1 - b2)

    def _bias_correction(self, step: int) -> float:
        """Of the factor statistics: 1 - b2^n for their n accumulations by ``step``."""
        b2 = self.cfg.betas[1]
        return 1.0 if b2 == 1.0 else 1 - b2 ** self.cfg.statistics_count(step)


class Shampoo(Variant):
    """P_i = (L_i / bc + eps I)^(-exponent); U = G~ x_1 P_1 ... x_k P_k.

    Shampoo: exponent 1/(2k). Shampoo2: exponent 1/k, factors trace-scaled (L / sqrt(tr L)), optionally with
    online power-iteration statistics.
    """

    def __init__(self, cfg: KronConfig):
        super().__init__(cfg)
        self.squared = cfg.variant == "shampoo2"

    def init_state(self, stack_shape, dtype, device):
        dims = stack_shape[1:]
        return {
            "factors": [torch.zeros(stack_shape[0], d, d, dtype=dtype, device=device) for d in dims],
            "roots": [_eye(stack_shape, d, dtype, device) for d in dims],
        }

    def accumulate(self, state, g, step):
        g = g.to(state["factors"][0].dtype)
        if self.squared and self.cfg.online:
            estimates = [normalised(f) for f in state["factors"]]
            for i, f in enumerate(state["factors"]):
                self._ema(f, mf.symmetrize(self._gram(g, i, apply_all_but(g, estimates, i))))
        else:
            for i, f in enumerate(state["factors"]):
                self._ema_gram(f, g, i)

    def refresh(self, state, step, counters):
        root = 1.0 / registry.shampoo_exponent(self.cfg, len(state["factors"]))
        bc = self._bias_correction(step)
        roots = []
        for f in state["factors"]:
            a = f / bc
            if self.squared and self.cfg.trace_scaling:
                a = a / trace(a).clamp(min=torch.finfo(a.dtype).tiny).sqrt()[:, None, None]
            if self.cfg.root_method == "newton":
                roots.append(mf.inverse_root_newton(a, round(root), self.cfg.eps))
            else:
                p, used_fp64 = mf.inverse_root_eigh(a, root, self.cfg.eps)
                counters["fp64_retries"] += int(used_fp64)
                roots.append(p)
        state["roots"] = roots
        counters["refreshes"] += len(roots) * len(roots[0])

    def direction(self, state, g, m, step):
        return apply_all(m.to(state["roots"][0].dtype), state["roots"])


class KrADagradStar(Variant):
    """X_i ~ L_i^-1 updated every step without inversion; P_i = X_i^(1/(2k)); the direction is rescaled to the
    first-moment estimate's norm per block, as the reference code does."""

    def init_state(self, stack_shape, dtype, device):
        dims = stack_shape[1:]
        return {
            "inverse_factors": [_eye(stack_shape, d, dtype, device, 1 / self.cfg.eps) for d in dims],
            "roots": [_eye(stack_shape, d, dtype, device) for d in dims],
        }

    def _decay(self, x: torch.Tensor) -> float:
        """The EMA L <- b2 L + (1 - b2) A in inverse form: X <- X / b2, then add (1 - b2) A = (sqrt(1 - b2) u)(...)^T.
        Returns the scale for u."""
        b2 = self.cfg.betas[1]
        if b2 < 1.0:
            x.div_(b2)
        return registry.inverse_decay_scale(b2)

    def accumulate(self, state, g, step):
        g = g.to(state["inverse_factors"][0].dtype)
        for i, x in enumerate(state["inverse_factors"]):
            scale = self._decay(x)
            x.copy_(mf.kradagrad_star_update(x, scale * unfold(g, i), x.shape[-1]))

    def refresh(self, state, step, counters):
        xs = state["inverse_factors"]
        state["roots"] = [mf.positive_root(x, 2 * len(xs)) for x in xs]
        counters["refreshes"] += len(xs) * len(xs[0])

    def direction(self, state, g, m, step):
        m = m.to(state["roots"][0].dtype)
        u = apply_all(m, state["roots"])
        return u * (block_norms(m) / (block_norms(u) + 1e-16))


class KrADagrad(KrADagradStar):
    """One factor per step (the largest dim, the others on perfect-square steps); G^ = G x_j X_j^(1/2) for the
    other factors; damping then X - X A X / (1 + ||X A||_F); P_i = X_i^(1/k). Ungrafted by default (the paper);
    ``grafting=`` applies per-block grafting as the authors' reference code does."""

    def init_state(self, stack_shape, dtype, device):
        k = len(stack_shape) - 1
        state = super().init_state(stack_shape, dtype, device)
        state["roots"] = [_eye(stack_shape, d, dtype, device, self.cfg.eps ** (-1.0 / k)) for d in stack_shape[1:]]
        state["half_roots"] = [_eye(stack_shape, d, dtype, device, self.cfg.eps**-0.5) for d in stack_shape[1:]]
        return state

    def factors_to_update(self, dims: tuple[int, ...], count: int) -> list[int]:
        """For the ``count``-th accumulation (the step when statistics_compute_steps is 1)."""
        return registry.kradagrad_factors(dims, registry.is_square(count))

    def accumulate(self, state, g, step):
        xs = state["inverse_factors"]
        g = g.to(xs[0].dtype)
        damping = registry.kradagrad_damping(self.cfg)
        for i in self.factors_to_update(tuple(g.shape[1:]), self.cfg.statistics_count(step)):
            ghat = apply_all_but(g, state["half_roots"], i)
            scale = self._decay(xs[i])
            xs[i].copy_(mf.kradagrad_update(xs[i], scale * unfold(ghat, i), damping))

    def refresh(self, state, step, counters):
        xs = state["inverse_factors"]
        roots = [mf.positive_root(x, len(xs)) for x in xs]
        half = roots if len(xs) == 2 else [mf.positive_root(x, 2) for x in xs]
        state["roots"], state["half_roots"] = roots, half
        counters["refreshes"] += len(xs) * len(xs[0])

    def direction(self, state, g, m, step):
        return apply_all(m.to(state["roots"][0].dtype), state["roots"])


class EShampoo(Variant):
    """Eigenvalue-corrected Shampoo: D <- b2 D + (1 - b2) (Q^T G Q)^2 in the factors' eigenbasis Q;
    U = Q [(Q^T G~ Q) / (sqrt(D / bc) + eps)] Q^T. With Q = I (before the first refresh) this is Adam.
    Refreshes are skipped per block and factor while the basis criterion stays <= refresh_tau.

    The second moment across a refresh follows ``cfg.refresh_rule`` (``precond.config.RefreshRule``):
    "position" (the preset, Meta's Distributed Shampoo) replaces the eigenvectors only, in ascending order, and
    leaves D in place; "follow" moves D with the columns: QR refreshes keep each column's identity and re-sort by
    Rayleigh quotient, D takes that sort's permutation (as SOAP's reference code does); an eigh refresh has no
    column identity, so ``mf.match_columns`` pairs new columns with old ones. Either way D after a refresh is a
    permutation of itself (never an entry duplicated or dropped)."""

    def init_state(self, stack_shape, dtype, device):
        dims = stack_shape[1:]
        return {
            "factors": [torch.zeros(stack_shape[0], d, d, dtype=dtype, device=device) for d in dims],
            "bases": [_eye(stack_shape, d, dtype, device) for d in dims],
            "second_moment": torch.zeros(stack_shape, dtype=dtype, device=device),
            # per factor and block: eigenbasis refreshes done (for diagnostics: refreshes per factor)
            "refresh_counts": [torch.zeros(stack_shape[0], dtype=torch.int64, device=device) for _ in dims],
        }

    def _due(self, state, i: int, f, q, counters) -> torch.Tensor:
        """Which blocks' factor ``i`` needs a new basis: all, or those whose criterion exceeds refresh_tau."""
        need = torch.ones(len(q), dtype=torch.bool, device=q.device)
        if self.cfg.refresh_tau > 0:
            need = mf.basis_criterion(f, q) > self.cfg.refresh_tau
        counters["skipped"] += int((~need).sum())
        counters["refreshes"] += int(need.sum())
        state["refresh_counts"][i] += need
        return need

    def accumulate(self, state, g, step):
        g = g.to(state["factors"][0].dtype)
        for i, f in enumerate(state["factors"]):
            self._ema_gram(f, g, i)

    def refresh(self, state, step, counters):
        new_bases, d = [], state["second_moment"]
        for i, (f, q) in enumerate(zip(state["factors"], state["bases"], strict=True)):
            a = self._basis_input(f, step)
            need = self._due(state, i, a, q, counters)
            q = q.clone()
            if need.any():
                q_new, perm = self._new_basis(a[need], q[need], step)
                q[need] = q_new
                d = self._moved(d, perm, i, need)
            new_bases.append(q)
        state["bases"], state["second_moment"] = new_bases, d

    def _basis_input(self, f, step):
        """The matrix whose eigenbasis a refresh computes: L, or Meta's L / bc + eps I."""
        if not self.cfg.refresh_rule.regularised_input:
            return f
        eye = torch.eye(f.shape[-1], dtype=f.dtype, device=f.device)
        return f / self._bias_correction(step) + self.cfg.eps * eye

    def _moved(self, d, perm, dim, rows):
        """The second moment after a refresh: permuted with the columns, or left in place."""
        return _permute(d, perm, dim, rows) if self.cfg.refresh_rule.follow_columns else d

    def _new_basis(self, a, q, step):
        """(new Q, the permutation that keeps the second moment aligned with Q's columns)."""
        descending = self.cfg.refresh_rule.descending
        if self.cfg.basis_method == "qr":
            return mf.qr_refine(a, q, self.cfg.refresh_tau, self.cfg.max_qr_iterations, descending)
        q_new = mf.eigenbasis(a, descending)[1]
        return q_new, (mf.match_columns(q_new, q) if self.cfg.refresh_rule.follow_columns else None)

    def direction(self, state, g, m, step):
        """Also updates the second moment, in the basis current after this step's refresh."""
        bases = state["bases"]
        g_rot = apply_all(g.to(bases[0].dtype), bases, transpose=True)
        state["second_moment"].mul_(self.cfg.betas[1]).addcmul_(g_rot, g_rot, value=1 - self.cfg.betas[1])
        m_rot = self._rotated_moment(state, g_rot, m, step)
        denom = (state["second_moment"] / (1 - self.cfg.betas[1] ** step)).sqrt_().add_(self.cfg.eps)
        return apply_all(m_rot / denom, bases)

    def _rotated_moment(self, state, g_rot, m, step):
        return apply_all(m.to(g_rot.dtype), state["bases"], transpose=True)


class SOAP(EShampoo):
    """EShampoo with the first moment kept in the eigenbasis (rotated when Q changes) and bases refreshed by one
    power-iteration + QR step (eigh the first time); the second moment is permuted when the basis re-sorts (the
    preset's "follow" rule, as SOAP's reference code re-sorts its second moment with the basis).

    First-moment estimate: ``nesterov=False`` (the preset, as SOAP's paper and reference code) uses the rotated EMA
    m / (1 - b1^t); ``nesterov=True`` uses (b1 m + (1 - b1) Q^T G Q) / (1 - b1^t), both in the eigenbasis."""

    def init_state(self, stack_shape, dtype, device):
        state = super().init_state(stack_shape, dtype, device)
        state["rotated_first_moment"] = torch.zeros(stack_shape, dtype=dtype, device=device)
        state["refreshed"] = False
        return state

    def refresh(self, state, step, counters):
        old = state["bases"]
        first = not state["refreshed"]
        new_bases, d = [], state["second_moment"]
        rule = self.cfg.refresh_rule
        for i, (f, q) in enumerate(zip(state["factors"], old, strict=True)):
            a = self._basis_input(f, step)
            if first:
                q_new, perm = self._new_basis(a, q, step)  # eigh (basis_method is SOAP's eigh)
                d = self._moved(d, perm, i, None)
                counters["refreshes"] += len(q)
                state["refresh_counts"][i] += 1
            else:  # one power-iteration + QR step, for the blocks whose criterion exceeds refresh_tau (all if 0)
                need = self._due(state, i, a, q, counters)
                q_new = q.clone()
                if need.any():
                    q_new[need], perm = mf.power_qr_step(a[need], q[need], rule.descending)
                    d = self._moved(d, perm, i, need)
            new_bases.append(q_new)
        m = state["rotated_first_moment"]
        for i, (q_old, q_new) in enumerate(zip(old, new_bases, strict=True)):
            m = mode_product(m, q_new.transpose(-1, -2) @ q_old, i)
        state.update(bases=new_bases, second_moment=d, rotated_first_moment=m, refreshed=True)

    def _rotated_moment(self, state, g_rot, m, step):
        b1 = self.cfg.betas[0]
        moment = state["rotated_first_moment"].lerp_(g_rot, 1 - b1)
        estimate = b1 * moment + (1 - b1) * g_rot if self.cfg.nesterov else moment
        return estimate / (1 - b1**step)


def make_variant(cfg: KronConfig) -> Variant:
    """The hooks class the variant's declaration names (``registry.VariantSpec.hooks``)."""
    return globals()[registry.SPECS[cfg.variant].hooks](cfg)


def _permute(d: torch.Tensor, perm: torch.Tensor, dim: int, rows: torch.Tensor | None) -> torch.Tensor:
    """Reorder the second moment along tensor dim ``dim`` by ``perm`` (B', d), for the blocks ``rows``."""
    d = d.clone()
    sub = d if rows is None else d[rows]
    moved = sub.movedim(dim + 1, -1)
    index = perm.reshape(perm.shape[0], *([1] * (moved.dim() - 2)), perm.shape[-1]).expand_as(moved)
    permuted = torch.gather(moved, -1, index).movedim(-1, dim + 1)
    if rows is None:
        return permuted
    d[rows] = permuted
    return d
