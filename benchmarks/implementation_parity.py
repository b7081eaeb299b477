"""Do two implementations of one algorithm take the same steps? kronbench's soap against HeavyBall's SOAP, and
kronbench's shampoo against Meta's Distributed Shampoo, each pair built by its submission (routing included) on
the same model, at matched settings (a search-space point that sets both sides' refresh schedule), fed the same
gradients: real mnist gradients at the initial weights, one batch per step, so that a difference in one step does
not change the next step's gradient. Per step it prints, for each pair,

    update: ||d_a - d_b|| / ||d_a||      (d = this step's parameter change, all parameters together)
    params: ||p_a - p_b|| / ||p_a - p_0|| (how far apart, relative to the distance travelled)

Identical implementations print zeros up to rounding (1e-7 in float32); a different rule shows at the step it
first acts (the first refresh, a bias correction), and its size says how much it matters. A measurement, not a
test: docs/measurements.md, "Implementations", records the figures and what causes them.

    python -m benchmarks.implementation_parity [--steps 40] [--every 1] [--dtype float32|float64]
        [--pairs soap soap_shifted shampoo shampoo_plain ...]

Meta's library is not on PyPI: put its ``distributed_shampoo`` on PYTHONPATH (or pass --meta_source with the
shipped ../shared/data/reference archive, unpacked to a scratch folder) for the shampoo pair.
"""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import os  # noqa: E402

import torch  # noqa: E402

import compat  # noqa: E402,F401  (so `from algoperf import spec` resolves)
from algoperf import spec  # noqa: E402
from benchmarks import meta_shampoo  # noqa: E402
from common import search_space  # noqa: E402
from compat import prng  # noqa: E402
from runner.loading import load_submission  # noqa: E402
from submissions.recipe import BASELINE_DEFAULTS  # noqa: E402
from workloads.registry import get_workload  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name: ((kronbench submission, its matched point), (third-party submission, its matched point), lead-in). SOAP:
# HeavyBall computes its first basis at step 1 and refreshes every 10 steps; kronbench's soap is told to do the
# same. HeavyBall's first step only initialises (no update), so "soap_shifted" gives it the first gradient once
# more beforehand (lead-in 1) and compares its step t + 1 with kronbench's step t. Shampoo: roots every 10 steps
# from step 10 on both sides (the submissions' 100 would leave the first steps Adam-only); "shampoo_plain" turns
# the NAdam-style first moment off on both sides, whose bias corrections differ (docs/measurements.md).
PAIRS = {
    "soap": (
        ("soap", dict(precondition_frequency=10, start_preconditioning_step=1)),
        ("thirdparty/heavyball_soap", dict(precondition_frequency=10)),
        0,
    ),
    "soap_shifted": (
        ("soap", dict(precondition_frequency=10, start_preconditioning_step=1)),
        ("thirdparty/heavyball_soap", dict(precondition_frequency=10)),
        1,
    ),
    "shampoo": (
        ("shampoo", dict(precondition_frequency=10, start_preconditioning_step=10)),
        ("thirdparty/meta_shampoo", dict(precondition_frequency=10, start_preconditioning_step=10)),
        0,
    ),
    "shampoo_plain": (
        ("shampoo", dict(precondition_frequency=10, start_preconditioning_step=10, nesterov=False)),
        ("thirdparty/meta_shampoo", dict(precondition_frequency=10, start_preconditioning_step=10, nesterov=False)),
        0,
    ),
    # Roots every step from step 1, at the submissions' epsilon and at 1e-3: how each regularises near-singular
    # factors is what separates the two (docs/measurements.md).
    "shampoo_every_step": (
        ("shampoo", dict(precondition_frequency=1, start_preconditioning_step=1, nesterov=False)),
        ("thirdparty/meta_shampoo", dict(precondition_frequency=1, start_preconditioning_step=1, nesterov=False)),
        0,
    ),
    "shampoo_every_step_eps1e-3": (
        ("shampoo", dict(precondition_frequency=1, start_preconditioning_step=1, nesterov=False, eps=1e-3)),
        (
            "thirdparty/meta_shampoo",
            dict(precondition_frequency=1, start_preconditioning_step=1, nesterov=False, epsilon=1e-3),
        ),
        0,
    ),
}


def gradients(workload, params, steps: int) -> list[dict[str, torch.Tensor]]:
    """The mnist loss's gradients at ``params`` on ``steps`` successive batches of 128."""
    queue = workload._build_input_queue(prng.PRNGKey(1), "train", "", 128)
    out = []
    for _ in range(steps):
        batch = next(queue)
        params.zero_grad(set_to_none=True)
        logits, _ = workload.model_fn(params, batch, None, spec.ForwardPassMode.TRAIN, None, False)
        loss = workload.loss_fn(batch["targets"], logits)
        (loss["summed"] / loss["n_valid_examples"]).backward()
        out.append({n: p.grad.detach().clone() for n, p in params.named_parameters()})
    return out


def side(name: str, overrides: dict, workload, initial: dict, dtype: torch.dtype):
    """(model, optimizer) of submission ``name`` from ``initial`` weights, its baseline point with ``overrides``."""
    folder = os.path.join(ROOT, "submissions", name)
    model, _ = workload.init_model_fn(prng.PRNGKey(0))
    model.load_state_dict(initial)
    model.to(dtype)
    point = {**search_space.load(os.path.join(folder, "tuning_search_space.json")).points(1)[0], **overrides}
    module = load_submission(os.path.join(folder, "submission.py")).module
    hp = search_space.make_hyperparameters(point)
    return model, module.init_optimizer_state(workload, model, None, hp, None)["optimizer"]


def flat(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])


def run_pair(pair: str, steps: int, dtype: torch.dtype) -> list[tuple[float, float]]:
    """(update difference, parameter difference) per step for one pair, as in the module docstring."""
    workload = get_workload("mnist")
    reference, _ = workload.init_model_fn(prng.PRNGKey(0))
    initial = {k: v.clone() for k, v in reference.state_dict().items()}
    grads = gradients(workload, reference, steps)
    (a_name, a_point), (b_name, b_point), lead_in = PAIRS[pair]
    torch.set_default_dtype(dtype)  # the libraries' own scalars and buffers follow it
    try:
        sides = [side(a_name, a_point, workload, initial, dtype), side(b_name, b_point, workload, initial, dtype)]
    finally:
        torch.set_default_dtype(torch.float32)
    start = flat(sides[0][0])
    for _ in range(lead_in):  # the second side's first gradient(s) ahead of the comparison
        step(*sides[1], grads[0], dtype)
    rows = []
    for g in grads:
        before = [flat(model) for model, _ in sides]
        for model, optimizer in sides:
            step(model, optimizer, g, dtype)
        after = [flat(model) for model, _ in sides]
        da, db = after[0] - before[0], after[1] - before[1]
        travelled = (after[0] - start).norm().item()
        rows.append(((da - db).norm().item() / da.norm().item(), (after[0] - after[1]).norm().item() / travelled))
    return rows


def step(model, optimizer, grads: dict, dtype: torch.dtype) -> None:
    for n, p in model.named_parameters():
        p.grad = grads[n].to(dtype)
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--pairs", nargs="+", choices=list(PAIRS), default=list(PAIRS)[:4])
    parser.add_argument(
        "--meta_source",
        default=meta_shampoo.ARCHIVE if os.path.isfile(meta_shampoo.ARCHIVE) else None,
        help="a folder holding distributed_shampoo, or its .tar.xz (default: the shipped one when present)",
    )
    args = parser.parse_args()
    meta_shampoo.on_path(args.meta_source)
    dtype = getattr(torch, args.dtype)
    print(f"mnist model, baseline point (lr {BASELINE_DEFAULTS.learning_rate:.4g}), {args.dtype}, same gradients")
    results = {pair: run_pair(pair, args.steps, dtype) for pair in args.pairs}
    header = "step " + " ".join(f"| {p}: update | {p}: params" for p in args.pairs)
    print(header)
    for step in range(args.steps):
        if (step + 1) % args.every == 0 or step == 0:
            cells = " ".join(f"| {results[p][step][0]:.2e} | {results[p][step][1]:.2e}" for p in args.pairs)
            print(f"{step + 1:4d} {cells}")


if __name__ == "__main__":
    main()
