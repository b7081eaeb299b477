"""Diagnostics that check the seed papers' claims on kronbench's own optimizers and models.

``python -m precond.diagnostics <command> --output_dir=DIR [--quick]``; each command writes a CSV and a PNG.
The math lives in pure modules (``kron``); the commands train small models on MNIST, whose data is the one thing
they take from the harness (``workloads.mnist.data``, imported by the command line only).
"""
