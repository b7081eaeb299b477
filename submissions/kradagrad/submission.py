"""KrADagrad (Mei, Moreno, Walters 2023): inverse Kronecker factors updated one per step without inversion, X^(1/2)
roots. Grafted to Adam per block as the authors' reference code grafts (ungrafted it lost to SGD in our tests), so
the NAdamW baseline's points are reused; AdaGrad-style factor sums aside, the recipe is the Shampoo submission's.
No damping: X - damping X^2 is an O(d^3) product every step (17 -> 11 ms/step on MNIST, same steps to target)."""

from precond import KrADagrad
from submissions import glue
from submissions.kradagrad.options import OPTIONS, ROUTING, SELF_TUNING_DEFAULTS

_build = glue.kronecker(KrADagrad, ROUTING, **OPTIONS)
HYPERPARAMETERS = glue.hyperparameters(_build)  # what a search-space point may set
get_batch_size, init_optimizer_state, update_params, data_selection = glue.make_submission(_build, SELF_TUNING_DEFAULTS)
