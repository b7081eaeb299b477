"""AlgoPerf's clock: wall time, synchronising the accelerator first so queued kernels are charged."""

import time

import torch

from algoperf.pytorch_utils import pytorch_setup, sync_ddp_time

USE_DDP, _, DEVICE, _ = pytorch_setup()
_CUDA = torch.cuda.is_available()


def get_time() -> float:
    if _CUDA:
        torch.cuda.synchronize()
    now = time.time()
    return sync_ddp_time(now, DEVICE) if USE_DDP else now
