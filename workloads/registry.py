"""Workload names to instances: kronbench's CPU suite first, then, when the real ``algoperf`` package is
installed, its official workloads (``criteo1tb``, ``fastmri``, ``imagenet_resnet``, ...) by their official names.

Imports are lazy so that listing names costs nothing. ``mnist`` is kronbench's (the same model as AlgoPerf's
development workload, on data that exists offline). ``framework="jax"`` gives the flax ports of those that have
one (``JAX_WORKLOADS``).
"""

import importlib

from common.errors import UsageError


class WorkloadError(UsageError):
    """An unknown workload or missing data; the message says how to fix it, on one line."""


WORKLOADS = {
    "mnist": "workloads.mnist.workload:MnistWorkload",
    "fashion_resnet": "workloads.fashion_resnet.workload:FashionResNetWorkload",
    "fashion_vit": "workloads.fashion_vit.workload:FashionViTWorkload",
    "stdlib_lm": "workloads.stdlib_lm.workload:StdlibLMWorkload",
    "flights_dlrm": "workloads.flights_dlrm.workload:FlightsDLRMWorkload",
    "qm9_gnn": "workloads.qm9_gnn.workload:QM9GNNWorkload",
    "mri_unet": "workloads.mri_unet.workload:MriUNetWorkload",
    "bible_mt": "workloads.bible_mt.workload:BibleMTWorkload",
    "espeak_asr": "workloads.espeak_asr.workload:EspeakASRWorkload",
}
CPU_SUITE = tuple(name for name in WORKLOADS if name != "mnist")
# The flax ports: the same splits, input pipeline, targets and budgets (``workloads.base_jax``).
JAX_WORKLOADS = {
    "mnist": "workloads.mnist.workload_jax:MnistJaxWorkload",
    "fashion_vit": "workloads.fashion_vit.workload_jax:FashionViTJaxWorkload",
    "stdlib_lm": "workloads.stdlib_lm.workload_jax:StdlibLMJaxWorkload",
    "flights_dlrm": "workloads.flights_dlrm.workload_jax:FlightsDLRMJaxWorkload",
}


def official_workloads() -> dict[str, dict]:
    """The real algoperf registry (name -> {'workload_path', 'workload_class_name'}), or {} without it."""
    try:
        module = importlib.import_module("algoperf.workloads.workloads")
    except ImportError:
        return {}
    return dict(getattr(module, "WORKLOADS", {}))


def known_workloads() -> list[str]:
    """The suite's names and, when algoperf is installed, the official ones."""
    return sorted(set(WORKLOADS) | set(official_workloads()))


def get_workload(name: str, framework: str = "pytorch"):
    if name in WORKLOADS:
        table = JAX_WORKLOADS if framework == "jax" else WORKLOADS
        if name not in table:
            raise WorkloadError(
                f"workload {name!r} has no JAX port yet; JAX workloads: {', '.join(JAX_WORKLOADS)} "
                "(or run it with --framework=pytorch)"
            )
        module_name, class_name = table[name].split(":")
        return getattr(importlib.import_module(module_name), class_name)()
    official = official_workloads()
    if name in official:
        return _import_official(official[name], framework)
    known = known_workloads()
    hint = "" if official else " (official AlgoPerf workloads need the algoperf package installed)"
    raise WorkloadError(f"unknown workload {name!r}; known workloads: {', '.join(known)}{hint}")


def _import_official(entry: dict, framework: str):
    """AlgoPerf's layout: ``algoperf/workloads/<path>_<framework>/workload.py`` holds the class."""
    module_name = "algoperf.workloads." + entry["workload_path"].replace("/", ".") + f"_{framework}.workload"
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise WorkloadError(
            f"official workload module {module_name} failed to import ({e}); check the algoperf install"
        ) from e
    return getattr(module, entry["workload_class_name"])()
