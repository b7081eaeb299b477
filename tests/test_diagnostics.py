"""Diagnostics: Kronecker approximation quality against closed forms and an independent SVD reference."""

import csv
import itertools

import pytest
import torch
import torch.nn.functional as F

from precond.diagnostics import kron
from precond.diagnostics.kron_quality import networks, per_example_grads
from tests.cli_helpers import run_cli


def spd(n, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q @ torch.diag(torch.logspace(-1, 1, n, dtype=torch.float64)) @ q.T


def product_set_grads(m=4, n=3, seed=0):
    """G = a b^T over every pair of two vector sets: E[vec G vec G^T] = E[a a^T] kron E[b b^T] exactly."""
    g = torch.Generator().manual_seed(seed)
    a_set = torch.randn(6, m, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(spd(m, seed + 1)).T
    b_set = torch.randn(5, n, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(spd(n, seed + 2)).T
    grads = torch.stack([torch.outer(a, b) for a, b in itertools.product(a_set, b_set)])
    return grads, a_set.T @ a_set / 6, b_set.T @ b_set / 5


def test_covariance_of_a_product_set_is_exactly_kronecker():
    grads, a, b = product_set_grads()
    assert torch.allclose(kron.gradient_covariance(grads), torch.kron(a, b))


def test_exact_kronecker_h_gives_cosine_one_for_opt_kron_and_shampoo2_not_shampoo():
    grads, _, _ = product_set_grads()
    c = kron.approximation_cosines(grads)
    assert c["opt_kron"] == pytest.approx(1.0, abs=1e-10) and c["shampoo2"] == pytest.approx(1.0, abs=1e-10)
    assert c["shampoo"] < 0.99  # the square roots of non-identity factors are not the factors


def test_power_iteration_from_the_identity_gives_l_kron_r_after_one_step():
    g = torch.Generator().manual_seed(3)
    grads = torch.randn(50, 4, 3, generator=g, dtype=torch.float64)
    left, right = kron.shampoo_factors(grads)
    a, b = kron.power_step(grads, torch.eye(4, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    assert torch.allclose(a, left / torch.linalg.norm(left)) and torch.allclose(b, right / torch.linalg.norm(right))
    assert torch.allclose(left, sum(x @ x.T for x in grads) / 50)


def test_optimal_kron_matches_the_svd_of_the_rearranged_h():
    """Van Loan and Pitsianis: the nearest A kron B is the top singular pair of H rearranged to (m^2, n^2)."""
    g = torch.Generator().manual_seed(4)
    grads = torch.randn(40, 3, 4, generator=g, dtype=torch.float64) * torch.linspace(0.2, 2, 4, dtype=torch.float64)
    m, n = 3, 4
    h = kron.gradient_covariance(grads)
    rearranged = h.reshape(m, n, m, n).permute(0, 2, 1, 3).reshape(m * m, n * n)
    u, s, vh = torch.linalg.svd(rearranged)
    best = s[0] * torch.kron(u[:, 0].reshape(m, m), vh[0].reshape(n, n))
    a, b = kron.optimal_kron(grads)
    assert kron.cosine(h, torch.kron(a, b)) == pytest.approx(kron.cosine(h, best), abs=1e-9)
    c = kron.approximation_cosines(grads)
    assert c["opt_kron"] >= c["shampoo2"] - 1e-12 and c["opt_kron"] >= c["shampoo"] - 1e-12


def test_per_example_grads_match_autograd_one_example_at_a_time():
    _, model = networks()["mlp"]
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(6, 49, generator=g), torch.randint(0, 10, (6,), generator=g)
    batched = per_example_grads(model, x, y, [2, 4])
    for i in range(6):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        for layer in (2, 4):
            assert torch.allclose(batched[layer][i], model[layer].weight.grad, atol=1e-6)


def test_quick_command_writes_its_csv_and_png_with_the_orderings_it_must_show(tmp_path):
    proc = run_cli("kron-quality", f"--output_dir={tmp_path}", "--quick", module="precond.diagnostics")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "kron_quality.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["layer", "step", "target", "method", "cosine"]
        rows = list(reader)
    layers = {r["layer"] for r in rows}
    assert layers == {"softmax_regression.0", "mlp.2", "mlp.4"}  # mlp.0 (16 x 49) exceeds 256 entries
    assert {r["step"] for r in rows} == {"0", "100", "200"} and {r["target"] for r in rows} == {
        "adagrad",
        "gauss_newton",
    }
    cos = {(r["layer"], r["step"], r["target"], r["method"]): float(r["cosine"]) for r in rows}
    assert len(cos) == 3 * 3 * 2 * 3 and all(0.0 < v <= 1.0 + 1e-12 for v in cos.values())
    for layer, step, target in {k[:3] for k in cos}:
        assert cos[(layer, step, target, "opt_kron")] >= cos[(layer, step, target, "shampoo2")] - 1e-9
        assert cos[(layer, step, target, "shampoo2")] > cos[(layer, step, target, "shampoo")]
    with open(tmp_path / "kron_batch.csv", newline="") as f:
        batch = list(csv.DictReader(f))
    assert {r["batch_size"] for r in batch} == {"1", "4", "16", "64"} and {r["labels"] for r in batch} == {
        "real",
        "sampled",
    }
    assert (tmp_path / "kron_quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
