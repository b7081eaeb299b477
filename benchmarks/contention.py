"""Contention between parallel local workers: a workload's step time alone and with k copies running at once.

For each workload and each k of ``--workers``: one trial alone, then k at once, then one alone again, each a
``python -m benchmarks.contention --measure`` subprocess set up as ``tuning``'s local executor sets up its workers
(``OMP_NUM_THREADS`` = cores / k, pinned to disjoint cores when they fit), each timing ``--steps`` update steps of
``--submission``'s first search-space point (no evals). The contention factor is the parallel step time over the
mean of the two alone ones; a campaign's worker count should keep it below 1.1 on every workload, since parallel
trials otherwise slow each other and time to target measures the crowding. ``--output`` keeps the numbers as JSON
for the leaderboard report.

    python -m benchmarks.contention [--workloads suite] [--workers 1 2] [--steps 40] [--output contention.json]
"""

from common.threads import configure_thread_env  # first: it must precede numpy and torch

configure_thread_env()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from common.atomic import atomic_open  # noqa: E402
from tuning.executors import THREAD_COUNT_ENV, cpu_sets  # noqa: E402
from workloads.registry import CPU_SUITE, WORKLOADS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = 1.1  # the largest factor at which a worker count is taken


def measure(workload_name: str, submission_name: str, steps: int) -> float:
    """Seconds per update step (submission time over ``steps`` steps, evals pushed past the end)."""
    import compat  # noqa: F401
    from common import layout, search_space
    from compat import prng
    from runner.loading import load_submission
    from runner.loop import TrialConfig, train_once
    from workloads.registry import get_workload

    folder = os.path.join(ROOT, "submissions", submission_name)
    point = search_space.load(os.path.join(folder, layout.SEARCH_SPACE)).points(1)[0]
    workload = get_workload(workload_name)
    workload.eval_period_time_sec = float("inf")
    for attr in ("num_eval_train_examples", "num_validation_examples", "num_test_examples"):
        setattr(workload, attr, 16)  # the one final eval, on a sliver
    cfg = TrialConfig(workload_name=workload_name, max_global_steps=steps, save_checkpoints=False, progress=False)
    submission = load_submission(os.path.join(folder, "submission.py"))
    result = train_once(workload, submission, search_space.make_hyperparameters(point), prng.PRNGKey(0), cfg)
    return result.submission_time / result.global_step


def _spawn(workload: str, args, threads: int, cpus: list[int] | None) -> subprocess.Popen:
    env = dict(os.environ, **{name: str(threads) for name in THREAD_COUNT_ENV})
    command = [sys.executable, "-m", "benchmarks.contention", "--measure", f"--workloads={workload}"]
    command += [f"--submission={args.submission}", f"--steps={args.steps}"]
    if cpus is not None:
        command += ["--cpus=" + ",".join(map(str, cpus))]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def _run_together(workload: str, args, k: int, threads: int, slots) -> list[float]:
    procs = [_spawn(workload, args, threads, slots[i] if slots else None) for i in range(k)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        sys.exit(f"error: measuring {workload} failed (exit {[p.returncode for p in procs]}); run with --measure")
    return [float(o.strip().splitlines()[-1]) for o in outs]


def contention(workload: str, args, k: int) -> dict:
    """Alone, k together, alone again: the factor against the mean of the two alone runs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // k)
    slots = cpu_sets(k, threads, cores)
    before = _run_together(workload, args, 1, threads, slots)[0]
    together = _run_together(workload, args, k, threads, slots)
    after = _run_together(workload, args, 1, threads, slots)[0]
    alone = (before + after) / 2
    return {
        "workload": workload,
        "workers": k,
        "threads": threads,
        "alone_ms": 1e3 * alone,
        "parallel_ms": 1e3 * statistics.mean(together),
        "factor": statistics.mean(together) / alone,
    }


def chosen_workers(rows: list[dict]) -> int:
    """The most workers whose factor stays below LIMIT on every workload measured (1 at least)."""
    ok = [
        k for k in sorted({r["workers"] for r in rows}) if all(r["factor"] < LIMIT for r in rows if r["workers"] == k)
    ]
    return max(ok, default=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="suite", help="comma-separated names; 'suite' is the CPU suite")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--submission", default="nadamw")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--output", default=None, help="JSON file for the numbers (the leaderboard report reads it)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # one timing subprocess
    parser.add_argument("--cpus", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = list(CPU_SUITE) if args.workloads == "suite" else args.workloads.split(",")
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or args.steps < 1 or min(args.workers) < 1:
        what = f"unknown workload {unknown[0]!r}" if unknown else "--steps and --workers must be at least 1"
        print(f"error: {what}; see --help", file=sys.stderr)
        sys.exit(2)
    if args.measure:
        if args.cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
        print(measure(names[0], args.submission, args.steps))
        return
    rows = []
    for name in names:
        for k in args.workers:
            rows.append(contention(name, args, k))
            r = rows[-1]
            print(
                f"{name:15s} k={k} threads={r['threads']}: alone {r['alone_ms']:.1f} ms/step, "
                f"in parallel {r['parallel_ms']:.1f} ms/step, factor {r['factor']:.2f}",
                flush=True,
            )
    workers = chosen_workers(rows)
    print(f"workers with every factor < {LIMIT}: {workers}")
    if args.output:
        record = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "submission": args.submission,
            "steps": args.steps,
            "limit": LIMIT,
            "chosen_workers": workers,
            "rows": rows,
        }
        with atomic_open(args.output) as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
