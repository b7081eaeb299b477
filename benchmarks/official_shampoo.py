"""AlgoPerf v0.6's winning submission (Meta's Distributed Shampoo, as published) in kronbench's runner under
torchrun on CPU with gloo, unmodified.

The published folder (../shared/data/algoperf/algoperf_v06_shampoo_submission.tar.xz) is unpacked into a scratch
directory and run as it is. What it needs is arranged outside its files:
- a process group with 8 trainers per Shampoo group: ``torchrun --nproc_per_node=8``, gloo on CPU;
- its vendored package imports itself as ``optimizers.distributed_shampoo...``, as bare ``shampoo_types`` /
  ``utils...`` and as ``submissions_algorithms.leaderboard.external_tuning.shampoo_submission.optimizers...``:
  ``--module_aliases`` makes the last two names the very modules of the first (compat/aliases.py), so its
  ``isinstance`` checks between them hold (a symlink tree would load each file twice and fail them);
- it allocates its factor matrices on ``cuda:<rank>``: ``--cuda_on_cpu`` (compat/cuda_on_cpu.py);
- it knows AlgoPerf's workloads' batch sizes, not the suite's: on a suite workload it runs through a wrapper
  beside its files (``suite_submission.py``) that re-exports it and gives the batch size kronbench's submissions
  use there (``submissions.recipe.BATCH_SIZES``), so both implementations see the same batches;
- every rank must own at least one block (its DDP distributor indexes its first block), and mnist at its
  max_preconditioner_dim of 1024 has four blocks for eight ranks: the search space here is its own first point
  with max_preconditioner_dim 128 (ten blocks). ``--published_point`` keeps the point as published (1024), for
  a workload with at least 8 blocks at 1024: ``--workload fashion_vit`` (on ``stdlib_lm`` the published code
  stops at its first root computation, non-finite; docs/measurements.md).

    python -m benchmarks.official_shampoo [--workload mnist] [--published_point] [--steps 300 | --steps 0: to the
        target or the budget] [--nproc 8] [--workdir DIR] [--experiment_dir DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile

from submissions import recipe
from workloads.registry import CPU_SUITE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHIVE = os.path.join(ROOT, "..", "shared", "data", "algoperf", "algoperf_v06_shampoo_submission.tar.xz")
ALIASES = (
    "shampoo_types=optimizers.distributed_shampoo.shampoo_types",
    "utils=optimizers.distributed_shampoo.utils",
    "submissions_algorithms.leaderboard.external_tuning.shampoo_submission=",
)
MAX_PRECONDITIONER_DIM = 128


def unpack(workdir: str) -> str:
    """The submission folder, unpacked once into ``workdir`` (data members only: no links, no absolute paths)."""
    folder = os.path.join(workdir, "shampoo")
    if not os.path.isfile(os.path.join(folder, "submission.py")):
        with tarfile.open(ARCHIVE) as tar:
            tar.extractall(workdir, filter="data")
    return folder


def search_space(folder: str, workdir: str, published: bool = False) -> str:
    """Its first published point: as published, or with a max_preconditioner_dim that gives each of 8 ranks a
    block on mnist."""
    with open(os.path.join(folder, "tuning_search_space.json")) as f:
        point = json.load(f)[0]
    if not published:
        point = dict(point, max_preconditioner_dim=MAX_PRECONDITIONER_DIM)
    path = os.path.join(workdir, "search_space.json")
    with open(path, "w") as f:
        json.dump([point], f)
    return path


WRAPPER = "suite_submission.py"
WRAPPER_SOURCE = '''"""The published submission, with the batch size kronbench's submissions use on {workload}."""

from submission import *  # noqa: F403  (its API functions, unchanged)
from submission import get_batch_size as _published_batch_size


def get_batch_size(workload_name):
    return {batch_size} if workload_name == {workload!r} else _published_batch_size(workload_name)
'''


def submission_for(folder: str, workload: str) -> str:
    """The file to run: the published ``submission.py`` where its ``get_batch_size`` knows ``workload`` (mnist and
    AlgoPerf's names), else a wrapper written beside it that imports it unchanged and answers for this suite
    workload."""
    if workload not in CPU_SUITE:
        return os.path.join(folder, "submission.py")
    path = os.path.join(folder, WRAPPER)
    with open(path, "w") as f:
        f.write(WRAPPER_SOURCE.format(workload=workload, batch_size=recipe.BATCH_SIZES[workload]))
    return path


def command(submission: str, space: str, args) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
        "-m", "runner",
        f"--submission_path={submission}",
        f"--workload={args.workload}",
        f"--tuning_search_space={space}",
        f"--experiment_dir={args.experiment_dir}",
        "--experiment_name=official_shampoo",
        "--overwrite",
        "--rng_seed=0",
        *([f"--max_global_steps={args.steps}"] if args.steps else []),
        "--progress=off",
        "--cuda_on_cpu",
        f"--module_aliases={','.join(ALIASES)}",
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mnist")
    parser.add_argument("--published_point", action="store_true", help="max_preconditioner_dim as published (1024)")
    parser.add_argument("--steps", type=int, default=300, help="0: no step cap (to the target or the budget)")
    parser.add_argument("--nproc", type=int, default=8)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "kronbench_official_shampoo"))
    parser.add_argument("--experiment_dir", default=None, help="default: <workdir>/experiments")
    args = parser.parse_args()
    if args.steps < 0:
        parser.error(f"--steps={args.steps} must be >= 0 (0: no cap)")
    if not os.path.isfile(ARCHIVE):
        print(f"error: {ARCHIVE} not found; this benchmark needs the shared AlgoPerf data folder", file=sys.stderr)
        return 2
    os.makedirs(args.workdir, exist_ok=True)
    args.experiment_dir = args.experiment_dir or os.path.join(args.workdir, "experiments")
    folder = unpack(args.workdir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}
    space = search_space(folder, args.workdir, args.published_point)
    submission = submission_for(folder, args.workload)
    return subprocess.run(command(submission, space, args), cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
