"""Meta's Distributed Shampoo for kronbench's benchmarks: where its source is (the shipped archive in
../shared/data/reference; Meta's library is not on PyPI), and its Shampoo and EShampoo built at kronbench's benchmark
settings, so a benchmark can time or compare them beside kronbench's twins."""

import os
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHIVE = os.path.join(ROOT, "..", "shared", "data", "reference", "meta_distributed_shampoo_f6066066.tar.xz")
TWINS = {"Shampoo": "Meta Shampoo", "EShampoo": "Meta EShampoo"}  # kronbench's preset -> Meta's configuration


def on_path(source: str | None) -> None:
    """Make ``distributed_shampoo`` importable from ``source`` (a folder, or the shipped archive unpacked)."""
    if source is None:
        return
    if source.endswith(".tar.xz"):
        folder = tempfile.mkdtemp(prefix="kronbench_meta_")
        with tarfile.open(source) as tar:
            tar.extractall(folder, filter="data")
        source = folder
    sys.path.insert(0, source)


def load():
    """Meta's ``distributed_shampoo`` package: from the path, else from the shipped archive; None without either."""
    try:
        import distributed_shampoo
    except ImportError:
        if not os.path.isfile(ARCHIVE):
            return None
        on_path(ARCHIVE)
        import distributed_shampoo
    return distributed_shampoo


def optimizer(ds, name: str, params, lr: float, frequency: int, max_dim: int, refresh_tau: float = 0.1):
    """Meta's twin of kronbench's preset ``TWINS[name]`` names, fp32: matrices Shampoo-preconditioned (Adam-grafted
    roots) or eigenvalue-corrected (eigh, refreshed where the criterion exceeds ``refresh_tau``, as kronbench's
    EShampoo preset), vectors by Adam as kronbench's diagonal method, roots or bases every ``frequency`` steps from
    step ``frequency``, bias correction."""
    params = list(params)
    matrices, vectors = [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]
    adam = ds.AdamPreconditionerConfig(beta2=0.999, epsilon=1e-8)
    if name == "Meta Shampoo":
        config, grafting = ds.RootInvShampooPreconditionerConfig(), adam
    else:
        eigh = ds.EighEigendecompositionConfig(tolerance=refresh_tau)
        config, grafting = ds.EigenvalueCorrectedShampooPreconditionerConfig(amortized_computation_config=eigh), None
    groups = [{"params": matrices}]
    if vectors:
        groups.append({"params": vectors, "preconditioner_config": adam, "grafting_config": None})
    return ds.DistributedShampoo(
        groups,
        lr=lr,
        betas=(0.9, 0.999),
        epsilon=1e-8,
        max_preconditioner_dim=max_dim,
        precondition_frequency=frequency,
        start_preconditioning_step=frequency,
        use_bias_correction=True,
        grafting_config=grafting,
        preconditioner_config=config,
        distributed_config=ds.SingleDeviceDistributedConfig(target_parameter_dimensionality=2),
    )
