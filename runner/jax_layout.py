"""How a JAX trial hands its arrays to the submission: today's ``jit`` layout, or AlgoPerf v0.5/v0.6's ``pmap`` one.

``jit`` (kronbench's default, AlgoPerf since its jit migration): batches are global arrays sharded along the batch
axis (``algoperf.jax_sharding_utils``), parameters and model state are single replicated arrays.

``pmap`` (``--jax_batch_layout=pmap``; the layout AlgoPerf's runner and JAX workloads had at v0.5 and v0.6, which
their JAX submissions ``jax.pmap`` over): every array of a batch gains a leading axis of the local device count,
``(n_devices, batch / n_devices, ...)`` (AlgoPerf's ``data_utils.shard_and_maybe_pad_np``); the parameters and the
model state that ``init_model_fn`` returns are replicated along a leading device axis (``flax.jax_utils.replicate``,
as AlgoPerf's JAX ``init_model_fn`` did). The submission replicates its own optimizer state, as it did then.
AlgoPerf evaluated the replicated parameters with a pmapped forward pass, one copy per device, all equal; kronbench
evaluates the first copy (``unreplicate``) with its workload's jitted evaluation, which gives the same numbers.
"""

LAYOUTS = ("jit", "pmap")


class PassThrough:
    """Today's layout (and every PyTorch trial's): arrays pass through as the workload makes them. Imports no jax."""

    name = "jit"

    def batches(self, queue):
        return queue

    def model(self, params, model_state):
        return params, model_state

    def for_eval(self, params, model_state):
        return params, model_state


class Pmap:
    """AlgoPerf v0.5/v0.6: a leading device axis on batches, parameters and model state."""

    name = "pmap"

    def __init__(self, devices=None):
        import jax

        self.devices = list(devices or jax.local_devices())

    def batches(self, queue):
        import jax

        n = len(self.devices)
        for batch in queue:
            yield jax.tree.map(lambda x: x.reshape((n, -1, *x.shape[1:])), batch)

    def model(self, params, model_state):
        return self.replicate(params), self.replicate(model_state)

    def for_eval(self, params, model_state):
        return unreplicate(params), unreplicate(model_state)

    def replicate(self, tree):
        """One copy per device along a new leading axis, placed as ``jax.pmap`` places its inputs."""
        import jax
        import numpy as np

        mesh = jax.sharding.Mesh(np.array(self.devices), ("devices",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("devices"))
        n = len(self.devices)
        return jax.tree.map(lambda x: jax.device_put(np.stack([np.asarray(x)] * n), sharding), tree)


def unreplicate(tree):
    """The first device's copy of every array (``flax.jax_utils.unreplicate``)."""
    import jax

    return jax.tree.map(lambda x: x[0], tree)


def get(name: str):
    """The layout named ``name`` (one of LAYOUTS, as checked by the CLI)."""
    return Pmap() if name == "pmap" else PassThrough()
