"""``algoperf.jax_sharding_utils``: one mesh axis 'batch' over the local devices (a single device on CPU).

Parameters, optimizer and model state are replicated; batches are split along their leading axis.
"""

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def get_mesh() -> Mesh:
    return Mesh(jax.devices(), ("batch",))


def get_replicate_sharding() -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(get_mesh(), PartitionSpec())


def get_batch_dim_sharding() -> NamedSharding:
    """Devices hold consecutive slices of the leading (batch) axis."""
    return NamedSharding(get_mesh(), PartitionSpec("batch"))


def shard_along_batch_dim(tree):
    """Put every array of ``tree`` on the devices, split along its leading axis."""
    sharding = get_batch_dim_sharding()
    return jax.tree.map(lambda x: jax.device_put(x, sharding), tree)


def replicate(tree):
    """Put every array of ``tree`` whole on every device."""
    sharding = get_replicate_sharding()
    return jax.tree.map(lambda x: jax.device_put(x, sharding), tree)


def display_shard_info(x: jax.Array) -> None:
    for shard in x.addressable_shards:
        print(f"shard.device: {shard.device}, index: {shard.index}, replica_id: {shard.replica_id}.")
