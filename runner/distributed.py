"""The runner under ``torchrun``: the process group, who writes, and decisions every rank must share.

torchrun sets ``LOCAL_RANK`` (AlgoPerf's test for DDP, ``pytorch_setup``), ``RANK`` and ``WORLD_SIZE``; the
process group is initialised here with nccl on GPUs and gloo on CPUs (AlgoPerf's ``pytorch_init`` assumes
nccl). Rank 0 alone writes the trial directory (logs, checkpoints, TensorBoard, the lock); every rank reads a
checkpoint to resume, so a multi-node run needs an experiment directory all nodes share, as AlgoPerf's does.
"""

import logging
import os
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist

from algoperf.pytorch_utils import pytorch_setup
from common.errors import UsageError
from common.lifetime import die_with_parent

T = TypeVar("T")


def init() -> None:
    """Join the process group when launched by torchrun (a no-op otherwise, or when already joined)."""
    use_ddp, local_rank, _, _ = pytorch_setup()
    if not use_ddp or dist.is_initialized():
        return
    die_with_parent(os.getppid())  # torchrun put this rank in a session of its own: die with torchrun, not its group
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.get_rank() != 0:  # the other ranks' INFO/WARNING lines would repeat rank 0's
        logging.getLogger("kronbench").setLevel(logging.ERROR)


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_writer() -> bool:
    """Whether this process writes the experiment's files and prints its summaries: rank 0, or a lone process."""
    return rank() == 0


def decided_by_rank0(decide: Callable[[], T]) -> T:
    """Run ``decide`` on rank 0 only (it may write files) and return its value on every rank (it must pickle:
    paths, numbers). A UsageError on rank 0 is raised on every rank with the same message, so no rank is left
    waiting at a collective."""
    if not active():
        return decide()
    outcome: list = [None, None]  # (error message, value)
    if dist.get_rank() == 0:
        try:
            outcome[1] = decide()
        except UsageError as e:
            outcome[0] = str(e)
    dist.broadcast_object_list(outcome, src=0)
    if outcome[0] is not None:
        raise UsageError(outcome[0] if dist.get_rank() == 0 else f"(rank {dist.get_rank()}) {outcome[0]}")
    return outcome[1]


def world_env() -> dict[str, str]:
    """What torchrun told this process, for the trial's meta data."""
    return {k: os.environ[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE") if k in os.environ}
