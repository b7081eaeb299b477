"""``algoperf.pytorch_utils``: device and DDP discovery for PyTorch submissions and workloads."""

import os

import torch


def pytorch_setup() -> tuple[bool, int, torch.device, int]:
    """Return ``(use_ddp, rank, device, n_gpus)``; DDP is on when torchrun set ``LOCAL_RANK``."""
    use_ddp = "LOCAL_RANK" in os.environ
    rank = int(os.environ["LOCAL_RANK"]) if use_ddp else 0
    device = torch.device(f"cuda:{rank}" if torch.cuda.is_available() else "cpu")
    n_gpus = torch.cuda.device_count()
    return use_ddp, rank, device, n_gpus


def pytorch_init(use_ddp: bool, rank: int, profiler=None) -> None:
    """Initialise the process group under DDP (nccl on GPUs; gloo on CPUs, where AlgoPerf's would fail); a no-op
    on a single process or when the group already exists."""
    del profiler
    if use_ddp and not torch.distributed.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(rank)
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def sync_ddp_time(time: float, device: torch.device) -> float:
    """The maximum of ``time`` over ranks (the AlgoPerf clock under DDP)."""
    t = torch.tensor([time], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return float(t.item())
