"""How a parameter becomes blocks: squeeze unit dims, merge trailing dims, split large dims into blocks.

The leading dim (a weight's outputs in torch's layouts) keeps a factor of its own; the trailing dims are merged
from the right while their product stays <= max_dim. A (c_out, c_in, kh, kw) conv weight is thus preconditioned as
(c_out, c_in*kh*kw) whenever c_in*kh*kw <= max_dim: the standard Shampoo / K-FAC reshaping, one factor for the
output channels and one for the receptive field (merging from the left, as before, gave (c_out*c_in, kh*kw) for
small convs); beyond that the trailing dims form several groups, e.g. (512, 256, 9). A (64, 32, 3, 3) conv weight
with max_dim 1024 becomes one (64, 288) block; a (3000, 200) matrix becomes blocks of (1024, 200), (1024, 200)
and (952, 200). One-dimensional results are not preconditioned.
"""

import itertools
import math
from dataclasses import dataclass


def merge_small_dims(shape: tuple[int, ...], max_dim: int) -> tuple[int, ...]:
    """Drop size-1 dims; keep the leading (output) dim on its own and merge the trailing dims from the right, each
    joining the group to its right while the group's product stays <= max_dim. Never down to a single dim when
    there were several (a matrix stays a matrix: 1-D means diagonal treatment)."""
    dims = [d for d in shape if d != 1]
    if len(dims) <= 1:
        return tuple(dims) or ((1,) if shape else ())
    merged = [dims[-1]]
    for d in reversed(dims[1:-1]):
        if merged[-1] * d <= max_dim:
            merged[-1] *= d
        else:
            merged.append(d)
    return (dims[0], *reversed(merged))


@dataclass(frozen=True)
class Block:
    """One block of a parameter: the slices of its merged view, and the block's shape."""

    slices: tuple[slice, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(s.stop - s.start for s in self.slices)


@dataclass(frozen=True)
class BlockPlan:
    merged_shape: tuple[int, ...]
    blocks: tuple[Block, ...]
    preconditioned: bool  # False: handled by the diagonal method as a single block


def plan(shape: tuple[int, ...], max_dim: int, precondition: bool = True) -> BlockPlan:
    merged = merge_small_dims(tuple(shape), max_dim)
    if not precondition or len(merged) < 2:
        numel = math.prod(shape) if shape else 1
        return BlockPlan((numel,), (Block((slice(0, numel),)),), preconditioned=False)
    ranges = [[slice(s, min(s + max_dim, d)) for s in range(0, d, max_dim)] for d in merged]
    return BlockPlan(merged, tuple(Block(tuple(c)) for c in itertools.product(*ranges)), preconditioned=True)
