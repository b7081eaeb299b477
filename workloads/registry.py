"""Workload names to classes. Imports are lazy so that listing names costs nothing."""

import importlib


class WorkloadError(Exception):
    """An unknown workload or missing data; the message says how to fix it, on one line."""


WORKLOADS = {
    "mnist": "workloads.mnist.workload:MnistWorkload",
}


def get_workload(name: str):
    if name not in WORKLOADS:
        raise WorkloadError(f"unknown workload {name!r}; known workloads: {', '.join(sorted(WORKLOADS))}")
    module_name, class_name = WORKLOADS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()
