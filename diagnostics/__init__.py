"""Diagnostics that check the seed papers' claims on kronbench's own optimizers and models.

``python -m diagnostics <command> --output_dir=DIR [--quick]``; each command writes a CSV and a PNG.
The math lives in pure modules (``kron``); the commands train small models on MNIST (``workloads.mnist.data``).
``kron_logging`` is the runner's Kronecker-quality eval hook, which the runner loads by name (``runner.eval_hooks``):
this package sits above the runner and imports it nowhere.
"""
