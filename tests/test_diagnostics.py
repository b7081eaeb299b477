"""Diagnostics: Kronecker approximation quality against closed forms and an independent SVD reference."""

import csv
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from diagnostics import kron
from diagnostics.kron_quality import networks, per_example_grads
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


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


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_quick_command_writes_its_csv_and_png_with_the_orderings_it_must_show(tmp_path):
    proc = run_cli("kron-quality", f"--output_dir={tmp_path}", "--quick", module="diagnostics")
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


def test_fp32_root_errors_grow_with_the_condition_number_and_the_inverse_free_root_survives():
    from diagnostics import fp32

    rows = fp32.root_errors(fp32.QUICK)
    errors = {m: [r["relative_error"] for r in rows if r["method"] == m] for m in ("direct_eigh", "inverse_free")}
    assert [r["condition"] for r in rows if r["method"] == "inverse_free"] == list(fp32.QUICK.conditions)
    finite_direct = [e for e in errors["direct_eigh"] if math.isfinite(e)]
    assert finite_direct == sorted(finite_direct) and errors["inverse_free"] == sorted(errors["inverse_free"])
    assert errors["inverse_free"][0] < 1e-5  # well conditioned: both are accurate
    for direct, free in zip(errors["direct_eigh"][2:], errors["inverse_free"][2:], strict=True):
        assert not free >= direct  # from 1e6 on the inverse-free root is the more accurate (NaN direct counts)
    broken = rows[-2]  # condition 1e10, direct: fp32 eigenvalues below zero
    assert broken["negative_eigenvalues"] > 0 and math.isnan(broken["relative_error"])
    assert errors["inverse_free"][-1] < 0.05


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_fp32_robustness_quick_command(tmp_path):
    proc = run_cli("fp32-robustness", f"--output_dir={tmp_path}", "--quick", module="diagnostics")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "fp32_quadratic.csv", newline="") as f:
        rows = {(r["optimizer"], r["dtype"]): float(r["relative_loss"]) for r in csv.DictReader(f)}
    assert set(rows) == {(o, d) for o in ("shampoo", "kradagrad_star", "kradagrad", "eshampoo", "adam", "sgd")
                         for d in ("float32", "float64")}  # fmt: skip
    assert all(math.isfinite(v) and v < 1 for v in rows.values())
    for name in ("shampoo", "kradagrad_star", "kradagrad", "eshampoo", "adam"):
        assert rows[(name, "float32")] < rows[("sgd", "float32")] / 2
    assert rows[("shampoo", "float64")] <= rows[("shampoo", "float32")]
    assert (tmp_path / "fp32.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # minutes: make test-slow (the default run stays under 20 min)
def test_refresh_stats_quick_command_counts_refreshes_per_factor(tmp_path):
    proc = run_cli("refresh-stats", f"--output_dir={tmp_path}", "--quick", module="diagnostics")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "refresh_stats.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["variant"], float(r["tau"])) for r in rows} == {
        (v, t) for v in ("eshampoo", "soap") for t in (0.0, 0.01, 0.1, 0.3)
    }
    factors = {"128x784/0", "128x784/1", "128x128/0", "128x128/1", "10x128/0", "10x128/1"}
    for variant in ("eshampoo", "soap"):
        by_tau = {}
        for r in rows:
            if r["variant"] == variant:
                assert 0 <= int(r["refreshes"]) <= int(r["checks"])
                by_tau.setdefault(float(r["tau"]), {})[r["factor"]] = int(r["refreshes"]) / int(r["checks"])
        assert all(set(v) == factors for v in by_tau.values())
        assert all(share == 1.0 for share in by_tau[0.0].values())  # tau = 0 refreshes at every check
        mean = {tau: sum(v.values()) / len(v) for tau, v in by_tau.items()}
        assert mean[0.0] >= mean[0.01] >= mean[0.1] >= mean[0.3] and mean[0.3] < 0.5
    assert (tmp_path / "refresh_stats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hooked_per_example_grads_sum_over_token_axes_and_leave_grad_fields_alone():
    from diagnostics.hooks import per_example_linear_grads, small_linear_layers

    g = torch.Generator().manual_seed(6)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    x = torch.randn(5, 7, 4, generator=g)  # 5 examples of 7 tokens

    def per_example_loss(inputs=x):
        return model(inputs).pow(2).sum(dim=(1, 2))

    layers = small_linear_layers(model, max_size=12)
    assert set(layers) == {"0", "2"}
    grads = per_example_linear_grads(layers, per_example_loss)
    assert all(p.grad is None for p in model.parameters())
    for i in range(5):
        expected = torch.autograd.grad(per_example_loss(x[i : i + 1]).sum(), [model[0].weight, model[2].weight])
        assert torch.allclose(grads["0"][i], expected[0], atol=1e-6)
        assert torch.allclose(grads["2"][i], expected[1], atol=1e-6)


def test_runner_logs_kronecker_quality_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tests.cli_helpers import NADAMW

    proc = run_cli(
        "--workload=mnist",
        f"--submission_path={NADAMW}",
        "--tuning_ruleset=self",
        f"--experiment_dir={tmp_path}",
        "--experiment_name=k",
        "--max_global_steps=3",
        "--rng_seed=0",
        "--log_kron_quality_every=1",
    )
    assert proc.returncode == 0, proc.stderr
    acc = EventAccumulator(str(tmp_path / "k" / "mnist_pytorch" / "trial_1"))
    acc.Reload()
    tags = {t for t in acc.Tags()["scalars"] if t.startswith("kron_quality/")}
    assert tags == {f"kron_quality/net.layer2/{m}" for m in ("opt_kron", "shampoo2", "shampoo")}  # the 10x128 layer
    values = {t.rsplit("/", 1)[1]: [s.value for s in acc.Scalars(t)] for t in tags}
    assert [s.step for s in acc.Scalars("kron_quality/net.layer2/opt_kron")] == [1, 3]  # once per eval
    for a, b, c in zip(values["opt_kron"], values["shampoo2"], values["shampoo"], strict=True):
        assert 1.0 + 1e-6 >= a >= b - 1e-6 and b > c > 0
    bad = run_cli("--workload=mnist", f"--submission_path={NADAMW}", "--log_kron_quality_every=-1")
    assert bad.returncode == 2 and "--log_kron_quality_every=-1 must be >= 0" in bad.stderr
