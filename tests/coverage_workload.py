"""A tiny workload whose model has every parameter kind a submission must handle: conv weights, an embedding
table with a million rows (sent to Adam), 1-D norm and bias parameters, and a matrix above
max_preconditioner_dim (blocked)."""

import torch
from torch import nn

from algoperf import param_utils, spec
from tests.fakes import SleepyWorkload


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.batch_norm = nn.BatchNorm2d(4)
        self.embed = nn.Embedding(1_000_000, 2)
        self.wide = nn.Linear(4 * 4 * 4 + 2, 1100)  # (1100, 66): the 1100 dim is split into blocks of 1024
        self.layer_norm = nn.LayerNorm(1100)
        self.out = nn.Linear(1100, 2)

    def forward(self, x, ids):
        h = torch.relu(self.batch_norm(self.conv(x))).flatten(1)
        h = torch.cat([h, self.embed(ids)], dim=1)
        return self.out(self.layer_norm(torch.relu(self.wide(h))))


class CoverageWorkload(SleepyWorkload):
    """Inputs: 4x4 images and ids; the label is whether the image's mean is positive."""

    base_workload_name = "mnist"  # no batch size of its own: the runner retries with the base name

    def _build_input_queue(
        self, data_rng, split, data_dir, global_batch_size, cache=None, repeat_final_dataset=None, num_batches=None
    ):
        gen = torch.Generator().manual_seed(int(data_rng[0]))
        while True:
            x = torch.randn(global_batch_size, 1, 4, 4, generator=gen)
            ids = torch.randint(0, 1_000_000, (global_batch_size,), generator=gen)
            yield {"inputs": (x, ids), "targets": (x.mean(dim=(1, 2, 3)) > 0).long()}

    def init_model_fn(self, rng):
        torch.manual_seed(int(rng[0]))
        model = _Model()
        self._param_shapes = param_utils.pytorch_param_shapes(model)
        self._param_types = param_utils.pytorch_param_types(self._param_shapes)
        return model, None

    def model_fn(
        self,
        params,
        augmented_and_preprocessed_input_batch,
        model_state,
        mode,
        rng,
        update_batch_norm,
        dropout_rate=0.0,
    ):
        params.train(mode == spec.ForwardPassMode.TRAIN)
        return params(*augmented_and_preprocessed_input_batch["inputs"]), model_state
