"""An eval hook (``runner.eval_hooks``): how well Kronecker products approximate the curvature of the model's
small linear layers, as TensorBoard scalars ``kron_quality/<layer>/<method>``. ``python -m runner
--log_kron_quality_every=N`` is shorthand for ``--eval_hooks=diagnostics.kron_logging:KronQualityHook@N``.

On a fixed training batch drawn once, per-example gradients of each ``nn.Linear`` with at most ``max_size``
weights give the exact H = E[g g^T] (real labels: the gradient covariance Adagrad and Shampoo accumulate), and
``diagnostics.kron`` gives the cosines of the optimal Kronecker approximation, L kron R and
L^1/2 kron R^1/2 to it. The forward runs in training mode without batch-norm updates or dropout.
"""

import compat  # noqa: F401  (so `from algoperf import spec` resolves when imported on its own)
from algoperf import spec
from compat import prng
from diagnostics.hooks import per_example_linear_grads, small_linear_layers
from diagnostics.kron import approximation_cosines

MAX_SIZE = 1280  # weights per layer: H is MAX_SIZE^2 (13 MB in fp64)
EXAMPLES = 256


class KronQualityHook:
    def __init__(self, workload, data_rng, data_dir: str):
        queue = workload._build_input_queue(
            prng.fold_in(data_rng, 1), "train", data_dir=data_dir, global_batch_size=EXAMPLES
        )
        self.batch = next(queue)

    def __call__(self, workload, model_params, model_state, rng, global_step: int) -> dict[str, float]:
        batch = self.batch

        def per_example_loss():
            logits, _ = workload.model_fn(
                model_params, batch, model_state, spec.ForwardPassMode.TRAIN, rng, update_batch_norm=False
            )
            return workload.loss_fn(batch["targets"], logits, batch.get("weights"))["per_example"]

        grads = per_example_linear_grads(small_linear_layers(model_params, MAX_SIZE), per_example_loss)
        return {
            f"kron_quality/{name}/{method}": cosine
            for name, g in grads.items()
            for method, cosine in approximation_cosines(g).items()
        }
