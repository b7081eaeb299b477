"""Meta's Distributed Shampoo's options, set to the AlgoPerf v0.5 winner's recipe that kronbench's shampoo follows:
roots every 100 steps from step 100, blocks up to 1024, epsilon 1e-8, Adam grafting with the point's beta2 and
epsilon 1e-8, bias correction, decoupled weight decay, and a NAdam-style first moment (``nesterov``: Meta's
``beta3`` set to beta1 squared, which interpolates the momentum with the gradient a second time)."""

from submissions import recipe, routing

SELF_TUNING_DEFAULTS = recipe.BASELINE_DEFAULTS
OPTIONS = dict(
    precondition_frequency=100,
    start_preconditioning_step=100,
    max_preconditioner_dim=1024,
    epsilon=1e-8,
    grafting_epsilon=1e-8,
    use_bias_correction=True,
    nesterov=True,
)
ROUTING = routing.Policy(precondition_embeddings=False)  # as kronbench's shampoo: tables take the Adam grafting
